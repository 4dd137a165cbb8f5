"""The rows of a run, named once: a sample, a distinct answer of a step, a decision.

A schedule makes them (`voting/schedule.py`), the ledger stores and returns them
(`store/ledger.py`), reports read them. Fields are in the order of their table's columns, so
`row_values(record)` is the row SQLite stores and `Record(*row)` reads one back. Slotted and
built positionally: a million-step run makes a few million of them.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from operator import attrgetter


@dataclass(slots=True)
class SampleRow:
    """One sample: a vote (`answer` set) or a red-flagged sample (`flag` set)."""

    step: int
    idx: int  # vote index within the step (also its seed offset)
    epoch: int  # divergences before it was asked (rounds schedule)
    round: int
    seed: int
    temperature: float
    answer: int | None  # AnswerRow.id within (step, epoch); None when flagged
    flag: str | None  # red-flag reason (tasks.base.REASONS)
    detail: str | None
    tokens_in: int
    tokens_out: int
    tokens_reasoning: int
    latency_ms: float
    text: str | None  # raw text when kept (--keep-text)
    # who cast it: an index into the run's sources (voting/pool.py; 0 = the run's own model,
    # the only source of a run without a pool)
    source: int = 0


@dataclass(slots=True)
class AnswerRow:
    """A distinct vote key of a step in one epoch; `correct` against the reference (None:
    no reference)."""

    step: int
    epoch: int
    id: int
    key: str
    correct: int | None


@dataclass(slots=True)
class DecisionRow:
    """A step's final decision."""

    step: int
    epoch: int
    answer: int  # the winning AnswerRow.id
    votes: int  # valid votes counted until the decision (current epoch)
    samples: int  # samples of the current epoch, flagged ones included
    rounds: int  # rounds in which the step was asked (current epoch)
    margin: int  # the winner's lead over the runner-up
    decided_round: int
    divergent: int  # 1 when the decision left the draft (rounds schedule)
    correct: int | None


def columns(record: type) -> tuple[str, ...]:
    """A record's field names: its table's columns, in order."""
    return tuple(f.name for f in fields(record))


# record -> the tuple of its table's columns (C-speed; used for inserts and digests)
sample_values = attrgetter(*columns(SampleRow))
answer_values = attrgetter(*columns(AnswerRow))
decision_values = attrgetter(*columns(DecisionRow))
