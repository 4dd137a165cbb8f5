"""A slice of a solve, voted in memory: steps [start, start + count) from the closed-form
input of `start`, in rounds, exactly as `solve` votes them (the same schedule, seeds, red
flags and driver loop, `run.vote_rounds`), with no ledger; it ends early, as data, where a
solve would stop. `maker-local bench` times two of them (`maker_local.analysis.bench` reads
what they counted)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.records import AnswerRow, DecisionRow, SampleRow
from ..voting.chain import Tally
from ..voting.schedule import RoundRows, Schedule, StuckStep, VoteConfig
from .run import vote_rounds

FAILING_ROUNDS = 3  # rounds in a row in which every sample failed: the backend is down


class _Slice:
    """The task, cut off at step `end`, so the schedule finishes there."""

    def __init__(self, task: Any, end: int):
        self._task, self._end = task, end

    def num_steps(self) -> int:
        return self._end

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


@dataclass
class SliceStats(Tally):
    """Counts over the rounds of one slice (`engine.chain.Tally`), with the rows kept."""

    start: int = 0
    steps: int = 0
    wall_s: float = 0.0
    stopped: str | None = None
    k: int = 0
    # the rows themselves, read after timing (the correlation of the slice's votes)
    sample_rows: list[SampleRow] = field(default_factory=list)
    answer_rows: list[AnswerRow] = field(default_factory=list)
    decision_rows: list[DecisionRow] = field(default_factory=list)

    def add(self, rows: RoundRows, tokens: bool = True) -> None:
        super().add(rows, tokens)
        self.sample_rows += rows.samples
        self.answer_rows += rows.answers
        self.decision_rows += rows.decided

    def step_votes(self) -> list[Any]:
        """Each decided step's valid votes of its final epoch in order, as the ledger's
        `store.reads.final_votes` gives them."""
        from ..store.reads import StepVotes
        final = {d.step: d for d in self.decision_rows}
        correct = {(a.step, a.epoch, a.id): a.correct for a in self.answer_rows}
        votes: dict[int, list[tuple[int, int]]] = {}
        for r in self.sample_rows:
            d = final.get(r.step)
            if d is not None and r.answer is not None and r.epoch == d.epoch:
                votes.setdefault(r.step, []).append((r.idx, r.answer))
        out = []
        for step in sorted(votes):
            d, ids = final[step], [a for _, a in sorted(votes[step])]
            out.append(StepVotes(step, ids, {a: correct.get((step, d.epoch, a))
                                             for a in set(ids)}, d.answer))
        return out


def run_slice(task: Any, backend: Any, vote: VoteConfig, start: int, count: int,
              max_seconds: float | None = None,
              clock: Callable[[], float] = time.perf_counter) -> SliceStats:
    """Vote steps [start, start + count) in rounds, from the closed-form input of `start`.

    A stuck step, a failing backend or the time limit ends the slice early (`stopped` says
    which); what was measured until then still counts, as in a real run.
    """
    sched = Schedule(_Slice(task, start + count), vote, "rounds")
    sched.restore(done=start, epoch=0, rounds=0, chain_x=task.input_at(start), used={},
                  replay={})
    stats = SliceStats(start=start, steps=count, k=vote.k)
    failing = 0
    t0 = clock()

    def round_done(rows: RoundRows, *_: Any) -> Exception | None:
        nonlocal failing
        stats.add(rows)
        failing = failing + 1 if rows.flags.get("error", 0) == rows.n_samples > 0 else 0
        if failing >= FAILING_ROUNDS:
            return _SliceStopped(f"every sample of {failing} rounds in a row was a backend "
                                 "error")
        if max_seconds is not None and clock() - t0 >= max_seconds and not sched.finished:
            return _SliceStopped(f"time limit of {max_seconds:g} s")
        return None

    try:
        vote_rounds(sched, backend.sample, round_done)
    except (StuckStep, _SliceStopped) as e:
        stats.stopped = str(e)
    stats.wall_s = clock() - t0
    return stats


class _SliceStopped(Exception):
    """The slice ends early (what it measured until then still counts)."""
