"""A run's chain: the input each step sees, how recorded votes decide a step, and what a run's
rounds add up to. One copy of each, for the schedule, resume (`driver/run.py`), `verify`,
`replay`, the progress bar, the metrics and `bench`.

- **Follow.** The first step's input comes from the task (`task.initial()`, or the reference
  input at `start` for a slice); each decided vote key gives the next input
  (`task.next_input`). The answer behind a key is the reference's own when the key equals the
  reference's (nothing to parse), else the one the key names (`task.answer_from_key`): both are
  the same answer, the first is only cheaper.
- **Replay.** A step's recorded valid votes, fed in vote-index order to a fresh voter of the
  run's rule (`voting/rules.py`) or of a pooled run's combining rule (`voting/pool.py`), give
  the winner and the votes that decided it: what the live voter did.
- **Tally.** `Tally` sums the schedule's `RoundRows` (samples, votes, flags, decisions, errors,
  divergences, tokens).

Pure: a task, keys and rows in, inputs and counts out. No ledger, backend or clock: the store
returns rows and callers derive the chain here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from .pool import PoolVotes


def start_input(task: Any, start: int = 0) -> Any:
    """The input of step `start`: the task's initial input, or the reference trajectory's
    input there (a slice certifies that range of the reference)."""
    return task.initial() if start == 0 else task.input_at(start)


def follow(task: Any, x: Any, key: str, ref: Any = None) -> Any:
    """The input after `x` when `key` won; `ref` is the reference's `Parsed` for `x` (or
    None): when the vote equals it, its answer is used instead of parsing the key."""
    answer = ref.answer if ref is not None and key == ref.key else task.answer_from_key(key)
    return task.next_input(x, answer)


def inputs_from(task: Any, x: Any, keys: Iterable[str]) -> Iterator[Any]:
    """The inputs that follow `x` when `keys` win one step after another."""
    next_input, answer_from_key = task.next_input, task.answer_from_key
    for key in keys:
        x = next_input(x, answer_from_key(key))
        yield x


def chain_input(task: Any, start: int, done: int, keys: Iterable[str] | None) -> Any:
    """The input of step `done` of a run that started at step `start` and decided `keys`
    (steps start..done-1, in order). `keys` None: every decision agreed with the reference,
    so the input is the reference's (closed form, no replay; None past the task's end)."""
    if keys is None:
        return task.input_at(done) if done < task.num_steps() else None
    x = start_input(task, start)
    for x in inputs_from(task, x, keys):
        pass
    return x


def replay(rule: type, k: int, keys: Sequence[Any], sources: Sequence[int] | None = None,
           plan: Any = None) -> tuple[Any, int]:
    """Feed one step's recorded valid votes, in vote-index order, to a fresh voter: (the
    winner, the votes that decided it), or (None, all of them) when they do not decide it.

    `rule` is a class of `voting.rules.RULES`; with a pooled run's `plan`
    (`engine.pool.Plan`) the votes combine by its rule and `sources` names each vote's
    source. Keys may be vote keys or anything that stands for them one to one (answer ids).
    """
    if plan is None:
        voter = rule(k)
        add = voter.add
        for i, key in enumerate(keys, 1):
            if add(key):
                return voter.winner, i
        return None, len(keys)
    if sources is None:
        raise ValueError("a pooled replay needs the source of each vote")
    pooled = PoolVotes(rule, k, plan)
    for key, source in zip(keys, sources):
        if pooled.add(key, source):
            return pooled.winner, pooled.votes  # an escalation counts only its own votes
    return None, len(keys)


@dataclass
class Tally:
    """Counts summed over rounds (each an `engine.schedule.RoundRows`)."""

    rounds: int = 0
    samples: int = 0
    valid: int = 0  # samples that passed the red flags: votes
    decided: int = 0
    votes: int = 0  # valid votes of decided steps, until their decision
    errors: int = 0  # decided steps that disagree with the reference
    divergences: int = 0  # decisions that left the draft
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_reasoning: int = 0
    flags: dict[str, int] = field(default_factory=dict)  # red-flag reason -> samples

    @property
    def flagged(self) -> int:
        return self.samples - self.valid

    def add(self, rows: Any, tokens: bool = True) -> None:
        """Add one round's rows; `tokens=False` skips the token sums (a loop over every
        sample, for callers that do not show them)."""
        self.rounds += 1
        self.samples += len(rows.samples)
        self.valid += rows.valid
        self.errors += rows.errors
        decided = rows.decided
        if decided:
            self.decided += len(decided)
            votes = divergent = 0
            for d in decided:
                votes += d.votes
                divergent += d.divergent
            self.votes += votes
            self.divergences += divergent
        flags = self.flags
        for reason, n in rows.flags.items():
            flags[reason] = flags.get(reason, 0) + n
        if tokens:
            tin = tout = tre = 0
            for r in rows.samples:
                tin += r.tokens_in
                tout += r.tokens_out
                tre += r.tokens_reasoning
            self.tokens_in += tin
            self.tokens_out += tout
            self.tokens_reasoning += tre

    @classmethod
    def of(cls, rows: Any, tokens: bool = True) -> "Tally":
        """One round's counts."""
        t = cls()
        t.add(rows, tokens)
        return t
