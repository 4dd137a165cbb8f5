"""What reports, replay, verify and the progress bar read from a ledger, by name.

Every query against a run's tables outside `ledger.py` is here, so the schema is known in
one folder. Each function takes an open `Ledger` (read-only is enough) and returns records
(`maker_local.core.records`) or plain values; large reads are generators or numpy columns.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

import numpy as np

from ..core.records import DecisionRow
from .ledger import Ledger


class Vote(NamedTuple):
    """One sample of a step as voting sees it: its answer id and vote key (None: flagged)."""

    epoch: int
    answer: int | None
    key: str | None
    source: int = 0  # who cast it (voting/pool.py); 0 for a run without a pool


class StepSamples(NamedTuple):
    """A step's samples of every epoch, in vote-index order."""

    step: int
    votes: list[Vote]


@dataclass(slots=True)
class StepVotes:
    """A decided step's valid votes in its final epoch, in vote order (answer ids)."""

    step: int
    votes: list[int]
    correct: dict[int, int | None]  # answer id -> right against the reference
    winner: int  # the answer id the run decided
    sources: list[int] | None = None  # the source of each vote (a pooled run's ledger)


# --------------------------------------------------------------------------- run totals
def decision_columns(led: Ledger) -> dict[str, np.ndarray]:
    """Per decided step, in step order: votes, samples, rounds, wrong (0/1), divergent."""
    rows = led.con.execute("SELECT votes, samples, rounds, correct IS 0, divergent FROM decided "
                           "ORDER BY step").fetchall()
    a = np.array(rows, dtype=np.int64).reshape(-1, 5)
    return dict(zip(("votes", "samples", "rounds", "wrong", "divergent"), a.T))


def sample_totals(led: Ledger, reasons: tuple[str, ...]) -> dict[str, Any]:
    """Counts over all samples: total, valid, token sums and red flags by reason."""
    total, valid, tin, tout, treason, *by_reason = led.con.execute(
        "SELECT COUNT(*), COUNT(answer), COALESCE(SUM(tokens_in), 0), "
        "COALESCE(SUM(tokens_out), 0), COALESCE(SUM(tokens_reasoning), 0)"
        + "".join(", COALESCE(SUM(flag = ?), 0)" for _ in reasons) + " FROM samples",
        reasons).fetchone()
    return {"total": total, "valid": valid, "tokens_in": tin, "tokens_out": tout,
            "tokens_reasoning": treason, "flags": dict(zip(reasons, by_reason))}


def round_totals(led: Ledger) -> tuple[int, float]:
    """(rounds, seconds spent in them)."""
    n, wall = led.con.execute("SELECT COUNT(*), COALESCE(SUM(finished - started), 0) "
                              "FROM rounds").fetchone()
    return n, float(wall)


def abandoned_samples(led: Ledger) -> int:
    """Samples voted on a draft input that a divergence later replaced."""
    return led.con.execute("SELECT COUNT(*) FROM samples s JOIN decided d ON d.step = s.step "
                           "WHERE s.epoch < d.epoch").fetchone()[0]


def failure_counts(led: Ledger) -> dict[str, int]:
    """Failed attempts at requests (asked again, never votes) and how many were retryable."""
    con = led.con
    if not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'failures'").fetchone():
        return {"requests": 0, "retryable": 0}  # a ledger older than the failures table
    n, retry = con.execute("SELECT COUNT(*), COALESCE(SUM(retryable = 1), 0) FROM failures"
                           ).fetchone()
    return {"requests": n, "retryable": retry}


def running_totals(led: Ledger) -> dict[str, Any]:
    """What a resumed run's progress bar starts from: samples, flagged, tokens in/out,
    seconds in rounds, votes of decided steps, wrong decisions."""
    q = led.con.execute
    samples, flagged, tin, tout = q("SELECT COUNT(*), COUNT(flag), COALESCE(SUM(tokens_in), 0), "
                                    "COALESCE(SUM(tokens_out), 0) FROM samples").fetchone()
    votes, errors = q("SELECT COALESCE(SUM(votes), 0), COALESCE(SUM(correct = 0), 0) "
                      "FROM decided").fetchone()
    return {"samples": samples, "flagged": flagged, "tokens_in": tin, "tokens_out": tout,
            "seconds": round_totals(led)[1], "votes": votes, "errors": errors}


# ------------------------------------------------------------------------ hard steps
def collision_steps(led: Ledger) -> list[int]:
    """Decided steps whose first two valid votes (final epoch) were both wrong."""
    q = led.con.execute
    out = []
    for step, epoch in q("SELECT DISTINCT a.step, a.epoch FROM answers a JOIN decided d "
                         "ON d.step = a.step AND d.epoch = a.epoch WHERE a.correct = 0"
                         ).fetchall():
        first = q("SELECT a.correct FROM samples s JOIN answers a ON a.step = s.step "
                  "AND a.epoch = s.epoch AND a.id = s.answer WHERE s.step = ? AND "
                  "s.epoch = ? AND s.flag IS NULL ORDER BY s.idx LIMIT 2", (step, epoch)
                  ).fetchall()
        if len(first) == 2 and all(c == 0 for (c,) in first):
            out.append(step)
    return out


def hardest_steps(led: Ledger, k: int, count: int = 5) -> list[dict[str, Any]]:
    """The steps that needed the most samples, with their competing answers: only steps that
    needed more than k votes or met another answer (an easy run has none)."""
    q = led.con.execute
    out = []
    for step, epoch, samples, votes, rounds, win in q(
            "SELECT step, epoch, samples, votes, rounds, answer FROM decided d "
            "WHERE votes > ? OR EXISTS (SELECT 1 FROM answers a WHERE a.step = d.step "
            "AND a.epoch = d.epoch AND a.id > 0) "
            "ORDER BY samples DESC, step LIMIT ?", (k, count)).fetchall():
        answers = q("SELECT a.id, a.key, a.correct, COUNT(s.idx) FROM answers a LEFT JOIN "
                    "samples s ON s.step = a.step AND s.epoch = a.epoch AND s.answer = a.id "
                    "WHERE a.step = ? AND a.epoch = ? GROUP BY a.id ORDER BY COUNT(s.idx) DESC",
                    (step, epoch)).fetchall()
        out.append({"step": step, "samples": samples, "votes": votes, "rounds": rounds,
                    "answers": [{"key": key, "votes": n, "correct": c, "winner": aid == win}
                                for aid, key, c, n in answers]})
    return out


def sample_sizes(led: Ledger, max_rows: int) -> np.ndarray:
    """(tokens_in, tokens_out, tokens_reasoning, valid, correct) per sample, -1 = unknown;
    above `max_rows` samples, those of every n-th step (a step keeps all its samples)."""
    q = led.con.execute
    n = q("SELECT COUNT(*) FROM samples").fetchone()[0]
    every = max(1, -(-n // max_rows))
    rows = q("SELECT s.tokens_in, s.tokens_out, s.tokens_reasoning, s.answer IS NOT NULL, "
             "COALESCE(a.correct, -1) FROM samples s LEFT JOIN answers a ON a.step = s.step "
             "AND a.epoch = s.epoch AND a.id = s.answer WHERE s.step % ? = 0", (every,)
             ).fetchall()
    return np.array(rows, dtype=np.int64).reshape(-1, 5)


# ------------------------------------------------------------------- votes, in order
def final_votes(led: Ledger) -> Iterator[StepVotes]:
    """Every decided step's valid votes of its final epoch, in step order (for replay)."""
    q = led.con.execute
    winners = dict(q("SELECT step, answer FROM decided").fetchall())
    correct: dict[tuple[int, int], int | None] = {}
    for step, aid, c in q("SELECT a.step, a.id, a.correct FROM answers a JOIN decided d "
                          "ON d.step = a.step AND d.epoch = a.epoch"):
        correct[(step, aid)] = c
    if not pooled(led):
        rows = q("SELECT s.step, s.answer FROM samples s JOIN decided d ON d.step = s.step "
                 "AND d.epoch = s.epoch WHERE s.answer IS NOT NULL ORDER BY s.step, s.idx")
        for step, group in itertools.groupby(rows, key=lambda r: r[0]):
            votes = [aid for _, aid in group]
            yield StepVotes(step, votes, {a: correct.get((step, a)) for a in set(votes)},
                            winners[step])
        return
    rows = q("SELECT s.step, s.answer, s.source FROM samples s JOIN decided d "
             "ON d.step = s.step AND d.epoch = s.epoch WHERE s.answer IS NOT NULL "
             "ORDER BY s.step, s.idx")
    for step, group in itertools.groupby(rows, key=lambda r: r[0]):
        got = list(group)
        votes = [aid for _, aid, _ in got]
        yield StepVotes(step, votes, {a: correct.get((step, a)) for a in set(votes)},
                        winners[step], [src for _, _, src in got])


def decisions_with_keys(led: Ledger) -> Iterator[tuple[DecisionRow, str | None]]:
    """Every decision in step order with its winning vote key (None if the answer is
    missing)."""
    for *row, key in led.con.execute(
            "SELECT d.step, d.epoch, d.answer, d.votes, d.samples, d.rounds, d.margin, "
            "d.decided_round, d.divergent, d.correct, a.key FROM decided d LEFT JOIN answers a "
            "ON a.step = d.step AND a.epoch = d.epoch AND a.id = d.answer ORDER BY d.step"):
        yield DecisionRow(*row), key


def votes_by_step(led: Ledger) -> Iterator[StepSamples]:
    """Every step with samples (decided or not), in step order; one step in memory at a
    time."""
    source = "s.source" if pooled(led) else "0"
    rows = led.con.execute(f"SELECT s.step, s.epoch, s.answer, a.key, {source} FROM samples s "
                           "LEFT JOIN answers a ON a.step = s.step AND a.epoch = s.epoch AND "
                           "a.id = s.answer ORDER BY s.step, s.idx")
    for step, group in itertools.groupby(rows, key=lambda r: r[0]):
        yield StepSamples(step, [Vote(e, a, k, src) for _, e, a, k, src in group])


def pooled(led: Ledger) -> bool:
    """Whether the run voted with several sources (voting/pool.py)."""
    return bool(led.config["run"].get("pool"))


def votes_by_source(led: Ledger) -> list[dict[str, Any]]:
    """A pooled run's samples per source: [{source, samples, valid, right, wrong}] (right
    and wrong against the reference, where the task has one)."""
    if not pooled(led):
        return []
    rows = led.con.execute(
        "SELECT s.source, COUNT(*), COUNT(s.answer), COALESCE(SUM(a.correct = 1), 0), "
        "COALESCE(SUM(a.correct = 0), 0) FROM samples s LEFT JOIN answers a "
        "ON a.step = s.step AND a.epoch = s.epoch AND a.id = s.answer GROUP BY s.source "
        "ORDER BY s.source").fetchall()
    return [{"source": src, "samples": n, "valid": v, "right": r, "wrong": w}
            for src, n, v, r, w in rows]


def contested_steps(led: Ledger, contest_after: int) -> list[int]:
    """Steps of a pooled run whose decision came from the escalation: more valid votes in
    its final epoch than the contest point."""
    return [s for (s,) in led.con.execute(
        "SELECT s.step FROM samples s JOIN decided d ON d.step = s.step AND d.epoch = s.epoch "
        "WHERE s.answer IS NOT NULL GROUP BY s.step HAVING COUNT(*) > ? ORDER BY s.step",
        (contest_after,))]
