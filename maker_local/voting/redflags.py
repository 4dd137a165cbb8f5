"""Red flags: a sample that shows signs of confusion is discarded, not counted as a vote.

Reasons: "length" (the token cap was hit: finish_reason "length", inside a thought too),
"parse" (malformed output, or a reasoning model's thought that never ended: finish_reason
"unended", whose text is never parsed),
"rule" (optional task rule checks: an illegal move or a next state that does not follow from
it), "error" (the backend failed; retried, never a vote).
"""
from __future__ import annotations

from typing import Any

from ..core.types import Sample
from ..tasks.base import Flag, Parsed, Task

CAPPED = Flag("length", "hit the output token cap")
UNENDED = Flag("parse", "no end of thinking: the thought never ended, so there is no answer")


def classify(sample: Sample, task: Task, x: Any, rules: bool = False,
             repair: bool = False) -> Parsed | Flag:
    """A sample's vote (Parsed) or its red flag."""
    if sample.finish_reason == "error":
        return Flag("error", sample.error or "backend error")
    if sample.finish_reason == "length":
        return CAPPED
    if sample.finish_reason == "unended":
        return UNENDED
    got = task.parse(sample.text, x, repair)
    if rules and isinstance(got, Parsed):
        bad = task.check_rules(x, got.answer)
        if bad is not None:
            return bad
    return got
