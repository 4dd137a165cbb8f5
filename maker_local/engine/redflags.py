"""Red flags: a sample that shows signs of confusion is discarded, not counted as a vote.

Reasons: "length" (the token cap was hit: finish_reason "length"), "parse" (malformed output),
"rule" (optional task rule checks: an illegal move or a next state that does not follow from
it), "error" (the backend failed; retried, never a vote).
"""
from __future__ import annotations

from typing import Any

from ..tasks.base import Flag, Parsed, Task
from ..types import Sample

CAPPED = Flag("length", "hit the output token cap")


def classify(sample: Sample, task: Task, x: Any, rules: bool = False,
             repair: bool = False) -> Parsed | Flag:
    """A sample's vote (Parsed) or its red flag."""
    if sample.finish_reason == "error":
        return Flag("error", sample.error or "backend error")
    if sample.finish_reason == "length":
        return CAPPED
    got = task.parse(sample.text, x, repair)
    if rules and isinstance(got, Parsed):
        bad = task.check_rules(x, got.answer)
        if bad is not None:
            return bad
    return got
