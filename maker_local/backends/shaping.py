"""Pure request shaping for vLLM's OpenAI-compatible API (no I/O; tested on its own).

One `SampleRequest` becomes one HTTP request with `n` choices. Structured output goes in
`structured_outputs` (vLLM >= 0.12); the old `guided_*` fields are silently ignored by current
vLLM and are never sent. Sample i of a request uses seed + i (vLLM's rule), which the
schedule's seed layout relies on. Replies are checked, not trusted: anything that is not the
JSON vLLM sends (truncated, plain text, a list, choices that are not objects or not n of them,
counts that are not counts) becomes error samples that name the fault, never an exception.
"""
from __future__ import annotations

import json
from typing import Any

from ..types import Sample, SampleRequest


def structured_outputs(req: SampleRequest) -> dict[str, Any] | None:
    """The task's constraint as vLLM's `structured_outputs` (regex first, then JSON)."""
    c = req.constraint
    if c is None:
        return None
    if c.regex:
        return {"regex": c.regex}
    if c.json_schema:
        return {"json": c.json_schema}
    return None


def chat_prompt_text(messages: list[dict[str, str]]) -> str:
    """A plain-text prompt for models without a chat template (/v1/completions)."""
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def request_body(req: SampleRequest, model: str, api: str = "chat",
                 reasoning_effort: str | None = None) -> dict[str, Any]:
    """The JSON body of one request to /v1/chat/completions or /v1/completions."""
    body: dict[str, Any] = {
        "model": model, "n": req.n, "temperature": req.temperature, "seed": req.seed,
        "max_tokens": req.max_tokens,
        "return_token_ids": True,  # per-choice token counts; usage only sums the n choices
    }
    if api == "chat":
        body["messages"] = req.messages
        if reasoning_effort:
            body["reasoning_effort"] = reasoning_effort
    else:
        body["prompt"] = chat_prompt_text(req.messages)
    so = structured_outputs(req)
    if so is not None:
        body["structured_outputs"] = so
    return body


def _split(total: int, weights: list[int]) -> list[int]:
    """Split an integer total across choices in proportion to weights (sums exactly)."""
    if not weights:
        return []
    s = sum(weights)
    if s == 0:
        base = [total // len(weights)] * len(weights)
        base[0] += total - sum(base)
        return base
    parts = [total * w // s for w in weights]
    parts[0] += total - sum(parts)
    return parts


class BadReply(ValueError):
    """A reply that is not what vLLM's OpenAI-compatible API sends (never retried)."""


def excerpt(raw: bytes | str, limit: int = 120) -> str:
    """The start of a reply body, on one line, for messages."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join(text.split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def parse_body(raw: bytes, req: SampleRequest, latency: float, server: str = "the server"
               ) -> list[Sample]:
    """The n Samples of one raw HTTP reply body; a reply that is not the JSON vLLM sends is
    n error samples (not retryable) naming the server, what was wrong and the reply's start.
    Never raises."""
    try:
        return _parse(json.loads(raw), req, latency)
    except (BadReply, ValueError, TypeError, UnicodeDecodeError) as e:
        why = str(e) if isinstance(e, BadReply) else f"not JSON: {e}"
        return error_samples(req, f"{server} sent a malformed reply ({why}): {excerpt(raw)}",
                             latency, retryable=False)


def parse_response(data: Any, req: SampleRequest, latency: float) -> list[Sample]:
    """The n Samples of one decoded response (chat or completions), in choice order; error
    samples (not retryable) for anything else. Never raises."""
    try:
        return _parse(data, req, latency)
    except BadReply as e:
        return error_samples(req, f"malformed reply ({e}): {excerpt(json.dumps(data))}",
                             latency, retryable=False)


def _count(value: Any, what: str) -> int:
    """A token count: a non-negative integer, or 0 when absent."""
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise BadReply(f"{what} is {value!r}, not a count")
    return value


def _get(obj: Any, key: str, types: tuple[type, ...], what: str) -> Any:
    value = obj.get(key)
    if value is not None and not isinstance(value, types):
        raise BadReply(f"{what} is a {type(value).__name__}")
    return value


def _parse(data: Any, req: SampleRequest, latency: float) -> list[Sample]:
    if not isinstance(data, dict):
        raise BadReply(f"a JSON {type(data).__name__}, not an object")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise BadReply("no choices list" if choices is None else
                       f"choices is a {type(choices).__name__}")
    if not all(isinstance(c, dict) for c in choices):
        raise BadReply("a choice is not an object")
    if len(choices) != req.n:
        raise BadReply(f"{len(choices)} choices for n={req.n}")
    index = [c.get("index") for c in choices]
    if all(type(i) is int for i in index):
        if sorted(index) != list(range(req.n)):
            raise BadReply(f"choice indexes {sorted(index)} for n={req.n}")
        choices = sorted(choices, key=lambda c: c["index"])
    elif any(i is not None for i in index):
        raise BadReply("a choice index is not an integer")
    usage = _get(data, "usage", (dict,), "usage") or {}
    prompt_tokens = _count(usage.get("prompt_tokens"), "usage.prompt_tokens")
    completion = _count(usage.get("completion_tokens"), "usage.completion_tokens")
    details = _get(usage, "completion_tokens_details", (dict,), "completion_tokens_details")
    reasoning_total = _count((details or {}).get("reasoning_tokens"), "reasoning_tokens")
    texts, reasons, counts, reasoning_chars = [], [], [], []
    for c in choices:
        msg = _get(c, "message", (dict,), "a choice's message")
        if msg is not None:
            texts.append(_get(msg, "content", (str,), "message.content") or "")
            thought = (_get(msg, "reasoning_content", (str,), "reasoning_content")
                       or _get(msg, "reasoning", (str,), "reasoning") or "")
            reasoning_chars.append(len(thought))
        else:
            texts.append(_get(c, "text", (str,), "a choice's text") or "")
            reasoning_chars.append(0)
        reasons.append(_get(c, "finish_reason", (str,), "finish_reason") or "stop")
        ids = _get(c, "token_ids", (list,), "token_ids")
        counts.append(len(ids) if ids is not None else None)
    if "abort" in reasons:  # vLLM aborted the request (e.g. shutting down): ask again
        return error_samples(req, "the server aborted the request", latency, retryable=True)
    if any(n is None for n in counts):  # an older server: share usage by text length
        counts = _split(completion, [max(1, len(t)) for t in texts])
    reasoning = _split(reasoning_total, reasoning_chars) if reasoning_total else [0] * req.n
    return [Sample(t, "length" if r == "length" else "stop", prompt_tokens, n, rt, latency)
            for t, r, n, rt in zip(texts, reasons, counts, reasoning)]


def error_samples(req: SampleRequest, message: str, latency: float = 0.0,
                  retryable: bool | None = None) -> list[Sample]:
    """A failed request as data: n error samples (never votes; the request is asked again
    with the same seeds). `retryable`: whether asking again can help (None: unknown)."""
    return [Sample("", "error", 0, 0, 0, latency, message, retryable) for _ in range(req.n)]
