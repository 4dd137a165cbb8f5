"""Pure request shaping for vLLM's OpenAI-compatible API (no I/O; tested on its own).

One `SampleRequest` becomes one HTTP request with `n` choices. Structured output goes in
`structured_outputs` (vLLM >= 0.12); the old `guided_*` fields are silently ignored by current
vLLM and are never sent. Sample i of a request uses seed + i (vLLM's rule), which the
schedule's seed layout relies on.
"""
from __future__ import annotations

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


def parse_response(data: dict[str, Any], req: SampleRequest, latency: float) -> list[Sample]:
    """The n Samples of one response (chat or completions), in choice order."""
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    if len(choices) != req.n:
        return error_samples(req, f"server returned {len(choices)} choices for n={req.n}",
                             latency)
    usage = data.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("completion_tokens_details") or {}
    reasoning_total = int(details.get("reasoning_tokens") or 0)
    texts, reasons, counts, reasoning_chars = [], [], [], []
    for c in choices:
        msg = c.get("message")
        if msg is not None:
            texts.append(msg.get("content") or "")
            reasoning_chars.append(len(msg.get("reasoning_content") or msg.get("reasoning")
                                       or ""))
        else:
            texts.append(c.get("text") or "")
            reasoning_chars.append(0)
        reasons.append(c.get("finish_reason") or "stop")
        ids = c.get("token_ids")
        counts.append(len(ids) if ids is not None else None)
    if any(n is None for n in counts):  # an older server: share usage by text length
        counts = _split(completion, [max(1, len(t)) for t in texts])
    reasoning = _split(reasoning_total, reasoning_chars) if reasoning_total else [0] * req.n
    return [Sample(t, "length" if r == "length" else "stop", prompt_tokens, n, rt, latency)
            for t, r, n, rt in zip(texts, reasons, counts, reasoning)]


def error_samples(req: SampleRequest, message: str, latency: float = 0.0) -> list[Sample]:
    """A failed request as data: n error samples (red-flagged "error", never votes)."""
    return [Sample("", "error", 0, 0, 0, latency, message) for _ in range(req.n)]
