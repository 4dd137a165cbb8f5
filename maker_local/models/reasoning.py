"""Reasoning models: where a sample's thought ends and its answer begins (pure; no engine).

A reasoning model (gpt-oss, Qwen3 thinking, DeepSeek-R1) writes a thought, then its answer.
The thought is paid for but is never a vote: the answer is read only from the tokens after
the end of thinking, and a sample whose thinking never ended is a red flag, never parsed.

Each backend finds that boundary the same way: the end-of-thinking marker of the profile's
vLLM reasoning parser, as token ids, searched in the sample's output token ids. vLLM's own
parser is what applies the grammar after the thought (`structured_outputs_config`,
`--reasoning-parser`); this module only reads the output.

Counting: a sample's `tokens_reasoning` are its output tokens up to and including the end
marker (everything that is not answer). vLLM's `usage.completion_tokens_details.reasoning_tokens`
counts only the tokens between `<think>` and `</think>`, 2 fewer per sample for such models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..core.errors import UsageError, did_you_mean

UNENDED = "unended"  # a Sample's finish_reason when its thinking never ended (a red flag)


@dataclass(frozen=True, slots=True)
class Markers:
    """The text that ends a thought for one vLLM reasoning parser."""

    parser: str
    end: str
    start: str | None = None


# vLLM reasoning parser name -> its end-of-thinking marker (checked against vLLM 0.32's
# reasoning/*.py: deepseek_r1 and qwen3 split on </think>; gpt-oss's final channel header)
PARSERS: dict[str, Markers] = {
    "deepseek_r1": Markers("deepseek_r1", "</think>", "<think>"),
    "qwen3": Markers("qwen3", "</think>", "<think>"),
    "openai_gptoss": Markers("openai_gptoss", "<|channel|>final<|message|>"),
}


def markers(parser: str) -> Markers:
    """The markers of a reasoning parser; a UsageError naming the known ones otherwise."""
    got = PARSERS.get(parser)
    if got is None:
        raise UsageError(f"unknown reasoning parser {parser!r}"
                         f"{did_you_mean(parser, list(PARSERS))}; known: "
                         f"{', '.join(PARSERS)} (vLLM's names)")
    return got


def answer_start(ids: Sequence[int], end_ids: Sequence[int]) -> int | None:
    """The index just after the LAST occurrence of `end_ids` in `ids` (where the answer
    starts), or None when the thinking never ended."""
    m = len(end_ids)
    if m == 0:
        return None
    first = end_ids[0]
    for i in range(len(ids) - m, -1, -1):
        if ids[i] == first and list(ids[i:i + m]) == list(end_ids):
            return i + m
    return None


def marker_ids(tokenizer, parser: str) -> list[int]:
    """The end marker of `parser` as token ids of `tokenizer` (a Hugging Face tokenizer);
    a UsageError when the tokenizer cannot write it (the wrong parser for this model)."""
    end = markers(parser).end
    ids = tokenizer.encode(end, add_special_tokens=False)
    if not ids or tokenizer.decode(ids) != end:
        raise UsageError(f"the model's tokenizer does not know {end!r}, the end of thinking "
                         f"of reasoning parser {parser!r}: choose the parser that matches "
                         "the model (profile key reasoning_parser, or --reasoning-parser)")
    return list(ids)
