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
from dataclasses import dataclass
from typing import Any, Callable

from ..core.types import Sample, SampleRequest
from ..models.reasoning import UNENDED, answer_start
from .options import BackendOptions


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


def template_kwargs(options: BackendOptions) -> dict[str, Any]:
    """The chat template's kwargs for engines that render it here (in-process vLLM, hf): the
    profile's, plus reasoning_effort (gpt-oss's template reads it; a server takes it as a
    request field instead)."""
    kw = dict(options.chat_template_kwargs)
    if options.reasoning_effort:
        kw.setdefault("reasoning_effort", options.reasoning_effort)
    return kw


def chat_prompt_text(messages: list[dict[str, str]]) -> str:
    """A plain-text prompt for models without a chat template (/v1/completions)."""
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


def request_body(req: SampleRequest, model: str, api: str = "chat",
                 reasoning_effort: str | None = None,
                 chat_template_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
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
        if chat_template_kwargs:
            body["chat_template_kwargs"] = chat_template_kwargs
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


def parse_body(raw: bytes, req: SampleRequest, latency: float, server: str = "the server",
               end_ids: list[int] | None = None, reads: list | None = None) -> list[Sample]:
    """The n Samples of one raw HTTP reply body; a reply that is not the JSON vLLM sends is
    n error samples (not retryable) naming the server, what was wrong and the reply's start.
    `end_ids`: a reasoning model's end-of-thinking marker as token ids (see _parse);
    `reads`: a list for gpt-oss (harmony): each choice is read by channel from its token ids
    and its `harmony.Read` appended there. Never raises."""
    try:
        return _parse(json.loads(raw), req, latency, end_ids, reads)
    except (BadReply, ValueError, TypeError, UnicodeDecodeError) as e:
        why = str(e) if isinstance(e, BadReply) else f"not JSON: {e}"
        return error_samples(req, f"{server} sent a malformed reply ({why}): {excerpt(raw)}",
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


def _parse(data: Any, req: SampleRequest, latency: float,
           end_ids: list[int] | None = None, reads: list | None = None) -> list[Sample]:
    """Replies of a server with a reasoning parser carry the answer in `content` and the
    thought in `reasoning` (`reasoning_content` before vLLM 0.13); only `content` is the
    answer. With `end_ids`, each choice's returned token ids say where its thinking ended:
    its thought tokens are counted there, and a choice whose thinking never ended is
    "unended" (its thought as text, never parsed) or "length" when the cap cut it. Without
    them (`[]`: a reasoning model whose marker is unknown), usage's reasoning_tokens are
    shared by thought length and a choice with a thought and no content is unended."""
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
    texts, thoughts, reasons, ids_of = [], [], [], []
    for c in choices:
        msg = _get(c, "message", (dict,), "a choice's message")
        if msg is not None:
            content = _get(msg, "content", (str,), "message.content")
            thought = (_get(msg, "reasoning_content", (str,), "reasoning_content")
                       or _get(msg, "reasoning", (str,), "reasoning"))
        else:
            content, thought = _get(c, "text", (str,), "a choice's text"), None
        texts.append(content)
        thoughts.append(thought)
        reasons.append(_get(c, "finish_reason", (str,), "finish_reason") or "stop")
        ids = _get(c, "token_ids", (list,), "token_ids")
        if ids is not None and not all(type(t) is int for t in ids):
            raise BadReply("token_ids holds something that is not a token id")
        ids_of.append(ids)
    if "abort" in reasons:  # vLLM aborted the request (e.g. shutting down): ask again
        return error_samples(req, "the server aborted the request", latency, retryable=True)
    if any(ids is None for ids in ids_of):  # an older server: share usage by text length
        counts = _split(completion, [max(1, len(t or "")) for t in texts])
    else:
        counts = [len(ids) for ids in ids_of]
    out = []
    if reads is not None:  # gpt-oss: the channels from the token ids (backends/harmony.py)
        if any(ids is None for ids in ids_of):
            raise BadReply("no token_ids (a vLLM older than 0.10.2?): gpt-oss's answers are "
                           "read by channel from them")
        from . import harmony
        for r, ids in zip(reasons, ids_of):
            got = harmony.read(ids)
            reads.append(got)
            out.append(harmony.sample_of(got, len(ids), r, prompt_tokens, latency))
        return out
    if end_ids and all(ids is not None for ids in ids_of):
        for content, thought, r, ids in zip(texts, thoughts, reasons, ids_of):
            at = answer_start(ids, end_ids)
            if at is None:
                out.append(Sample(thought or content or "", "length" if r == "length"
                                  else UNENDED, prompt_tokens, len(ids), len(ids), latency))
            else:
                out.append(Sample(content or "", "length" if r == "length" else "stop",
                                  prompt_tokens, len(ids), at, latency))
        return out
    reasoning = (_split(reasoning_total, [len(t or "") for t in thoughts]) if reasoning_total
                 else [0] * req.n)
    for content, thought, r, n, rt in zip(texts, thoughts, reasons, counts, reasoning):
        if end_ids is not None and content is None and thought:
            # a reasoning parser put everything in the thought: its thinking never ended
            out.append(Sample(thought, "length" if r == "length" else UNENDED,
                              prompt_tokens, n, n, latency))
        else:
            out.append(Sample(content or "", "length" if r == "length" else "stop",
                              prompt_tokens, n, rt, latency))
    return out


def error_samples(req: SampleRequest, message: str, latency: float = 0.0,
                  retryable: bool | None = None) -> list[Sample]:
    """A failed request as data: n error samples (never votes; the request is asked again
    with the same seeds). `retryable`: whether asking again can help (None: unknown)."""
    return [Sample("", "error", 0, 0, 0, latency, message, retryable) for _ in range(req.n)]


@dataclass
class Failure:
    """A request no server answered: what the last try said (it names the server)."""
    text: str
    retryable: bool | None
    latency: float = 0.0


# what a reply's parser returns: its value, or the failure (text naming the server, retryable)
Parser = Callable[[bytes, str, float], "tuple[Any, tuple[str, bool | None] | None]"]


def json_reply(raw: bytes, url: str, latency: float) -> tuple[Any, tuple[str, bool] | None]:
    """A reply that must be a JSON object (tokenize, completions used by draft sampling)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        return None, (f"{url} sent a malformed reply (not JSON: {e}): {excerpt(raw)}", False)
    if not isinstance(data, dict):
        return None, (f"{url} sent a malformed reply (a JSON {type(data).__name__}): "
                      f"{excerpt(raw)}", False)
    return data, None
