"""A ledger that notices edits: every round carries a digest chained to the round before.

digest(r) = sha256(digest(r - 1), the round's row, and the digests of its samples, of the
answers and of the decisions it added), and digest(-1) = sha256 of the run's configuration.
Rows are hashed in a canonical form (repr of the row's tuple, in key order) computed the
same way when a round is written (from memory) and when it is verified (from the file), so
a sample, vote key, answer or decision that is changed, deleted or inserted afterwards, or a
changed configuration, breaks the chain at the first round it touches. `verify` walks the
chain in one pass over the tables.

Timings (when a round ran, request latencies) are left out, so two runs that found the same
thing (a run resumed after a kill and an uninterrupted one, with a deterministic backend)
end with the same head digest: a fingerprint of the result. Not covered either: the
`failures` table, and the end of the chain: deleting the last rounds leaves a shorter
ledger that verifies, so publish the head digest (`report` prints it) when a third party
should check a run.
"""
from __future__ import annotations

import hashlib
import itertools
import sqlite3
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Iterable

from ..core.gcpause import gc_paused
from ..core.records import (AnswerRow, DecisionRow, SampleRow, answer_values, columns,
                            decision_values, sample_values)

VERSION = "maker-local ledger digest v1"
CHUNK = 20000  # rows hashed per update when writing (bounds memory)


def genesis(config_json: str) -> str:
    return hashlib.sha256(f"{VERSION}\n{config_json}".encode()).hexdigest()


# a sample's columns as hashed: all but latency_ms (timings are not what a run found), and
# its source only when it is not 0 (the run's own model): a sample of a run without a pool
# hashes as it did before ledgers recorded sources, so their chains verify unchanged
_SOURCE = columns(SampleRow).index("source")
_hashed_sample = itemgetter(*(i for i, c in enumerate(columns(SampleRow))
                              if c not in ("latency_ms", "source")))
_source_of = itemgetter(_SOURCE)


def hashed_samples(samples: Iterable[tuple]) -> Iterable[tuple]:
    """Sample rows (all columns, in order) in the form they are hashed."""
    samples = samples if isinstance(samples, list) else list(samples)
    if not any(map(_source_of, samples)):  # C speed for the common case: no pool
        return map(_hashed_sample, samples)
    return (_hashed_sample(r) + (r[_SOURCE],) if r[_SOURCE] else _hashed_sample(r)
            for r in samples)


def table_digest(rows: Iterable[Iterable[Any]]) -> Any:
    """sha256 over rows in their canonical form: repr of the row's tuple, one per line."""
    h = hashlib.sha256()
    it = iter(rows)
    while chunk := list(itertools.islice(it, CHUNK)):
        h.update(("\n".join(map(repr, chunk)) + "\n").encode())
    return h


def chain(prev: str, round_row: tuple, samples: Any, answers: Any, decided: Any) -> str:
    """A round's digest from the previous one and its tables' digests."""
    rnd, _started, _finished, requests, n_samples, n_decided = round_row
    head = repr((int(rnd), int(requests), int(n_samples), int(n_decided)))
    return hashlib.sha256(f"{prev}\n{head}\nS {samples.hexdigest()}\nA {answers.hexdigest()}"
                          f"\nD {decided.hexdigest()}".encode()).hexdigest()


def round_digest(prev: str, round_row: tuple, samples: Iterable[SampleRow],
                 answers: Iterable[AnswerRow], decided: Iterable[DecisionRow]) -> str:
    """The digest of one round as it is written. `round_row`: (round, started, finished,
    requests, samples, decided); samples sorted by (step, idx), answers by (step, epoch, id),
    decided by step (each hashed as its table's columns in order, not the `round` added for
    this)."""
    return values_digest(prev, round_row, map(sample_values, samples),
                         map(answer_values, answers), map(decision_values, decided))


def values_digest(prev: str, round_row: tuple, samples: Iterable[tuple],
                  answers: Iterable[tuple], decided: Iterable[tuple]) -> str:
    """`round_digest` from the rows' column tuples (`records.sample_values` etc.: the tuples
    the ledger inserts), in the same order. Each value must be of the Python type SQLite
    returns for its column (int, float for REAL, str, None: what the schedule makes), so
    that hashing what was written and hashing what is read back agree."""
    return chain(prev, round_row, table_digest(hashed_samples(samples)),
                 table_digest(answers), table_digest(decided))


@dataclass
class Verdict:
    """What `verify` found. `ok` is None when there was nothing to check (no digests)."""

    ok: bool | None
    rounds: int = 0           # rounds whose digest was checked
    unverified: int = 0       # rounds written before this ledger kept digests
    head: str | None = None   # the last round's digest
    round: int | None = None  # the first altered round
    steps: tuple[int, int] | None = None  # the steps whose rows that round holds
    problem: str | None = None
    # "re-read": every digest computed again from the file (`verify`); "as written": the
    # rounds a run wrote were chained from the rows it wrote, in the same transactions, and
    # the rounds before them re-read when it was resumed (`Ledger.chain_verdict`)
    checked: str = "re-read"

    def as_dict(self) -> dict[str, Any]:
        return {"verified": self.ok, "rounds": self.rounds, "unverified_rounds": self.unverified,
                "head": self.head, "altered_round": self.round,
                "altered_steps": list(self.steps) if self.steps else None,
                "problem": self.problem, "checked": self.checked}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Verdict":
        steps = d.get("altered_steps")
        return cls(d["verified"], d["rounds"], d["unverified_rounds"], d["head"],
                   d["altered_round"], tuple(steps) if steps else None, d["problem"],
                   d.get("checked", "re-read"))

    def line(self) -> str:
        if self.ok is None:
            return "not verifiable (written before maker-local kept checksums)"
        if self.ok:
            extra = f", {self.unverified} older unverified" if self.unverified else ""
            head = f"; head {self.head[:16]}" if self.head else ""
            rounds = f"{self.rounds} round{'s' * (self.rounds != 1)}"
            if self.checked == "as written":
                return (f"chained as written ({rounds}{extra}{head}); "
                        "`maker-local verify` re-reads it")
            return f"verifies ({rounds}{extra}{head})"
        return f"ALTERED: {self.problem}"


# the columns hashed, as the records name them (a sample's latency is left out)
SAMPLE_FIELDS = tuple(c for c in columns(SampleRow) if c not in ("latency_ms", "source"))
SAMPLE_COLS = ", ".join(SAMPLE_FIELDS)
ANSWER_COLS = ", ".join(columns(AnswerRow))
DECIDED_COLS = ", ".join(columns(DecisionRow))
_ROUND = SAMPLE_FIELDS.index("round")  # where a sample row holds its round


def has_sources(con: sqlite3.Connection) -> bool:
    """Whether the ledger records each sample's source (written since pools exist)."""
    return any(r[1] == "source" for r in con.execute("PRAGMA table_info(samples)"))


def has_digests(con: sqlite3.Connection) -> bool:
    return any(r[1] == "digest" for r in con.execute("PRAGMA table_info(rounds)"))


@gc_paused()
def verify(con: sqlite3.Connection) -> Verdict:
    """Walk the chain over the whole ledger: one pass over each table in key order, each row
    fed to the digest of its round, then the rounds in order."""
    if not has_digests(con):
        return Verdict(None)
    cfg = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    prev = genesis(cfg[0] if cfg else "")
    digests: dict[str, dict[int, Any]] = {"S": {}, "A": {}, "D": {}}
    steps: dict[int, list[int]] = {}  # round -> [first step, last step] of its rows

    def feed(tag: str, rows: Iterable[tuple], at: int, cut: int | None = None) -> None:
        """Rows in key order (step first; row[at] is the round that added it), each fed to
        its round's digest: a run of consecutive rows of one round at a time, in chunks."""
        hashes = digests[tag]
        for rnd, run in itertools.groupby(rows, key=itemgetter(at)):
            h = hashes.get(rnd)
            if h is None:
                h = hashes[rnd] = hashlib.sha256()
            while chunk := list(itertools.islice(run, CHUNK)):
                first, last = chunk[0][0], chunk[-1][0]
                span = steps.setdefault(rnd, [first, last])
                span[0], span[1] = min(span[0], first), max(span[1], last)
                lines = map(repr, chunk if cut is None else map(itemgetter(slice(cut)), chunk))
                h.update(("\n".join(lines) + "\n").encode())

    # rows as SQLite returns them (step first), each fed to its round's digest
    if has_sources(con) and con.execute("SELECT 1 FROM samples WHERE source != 0 "
                                        "LIMIT 1").fetchone():
        # a pooled run: a sample's source is hashed after its other columns, unless it is 0
        rows: Iterable[tuple] = (r if r[-1] else r[:-1] for r in con.execute(
            f"SELECT {SAMPLE_COLS}, source FROM samples ORDER BY step, idx"))
    else:
        rows = con.execute(f"SELECT {SAMPLE_COLS} FROM samples ORDER BY step, idx")
    feed("S", rows, _ROUND)
    a, d = len(columns(AnswerRow)), len(columns(DecisionRow))  # then the round that added it
    feed("A", con.execute(f"SELECT {ANSWER_COLS}, round FROM answers WHERE round IS NOT NULL "
                          "ORDER BY step, epoch, id"), a, a)
    feed("D", con.execute(f"SELECT {DECIDED_COLS}, round FROM decided "
                          "WHERE round IS NOT NULL ORDER BY step"), d, d)

    verdict = Verdict(True)
    empty = hashlib.sha256()
    legacy: set[int] = set()
    for row in con.execute("SELECT round, started, finished, requests, samples, decided, digest "
                           "FROM rounds ORDER BY round"):
        rnd, stored = row[0], row[6]
        if stored is None:  # a round written before digests were kept
            verdict.unverified += 1
            legacy.add(rnd)
            continue
        got = chain(prev, row[:6], *(digests[t].pop(rnd, empty) for t in "SAD"))
        if got != stored:
            span = steps.get(rnd)
            where = f" (rows of steps {span[0]}..{span[1]})" if span else ""
            return _altered(verdict, rnd, tuple(span) if span else None,
                            f"round {rnd}{where} does not match its checksum: a row of it (or "
                            "an earlier round's checksum) was changed, deleted or inserted "
                            "after it was written")
        prev = stored
        verdict.rounds += 1
        verdict.head = stored
    for tag, what in (("S", "samples"), ("A", "answers"), ("D", "decisions")):
        extra = sorted(set(digests[tag]) - legacy)
        if extra:
            return _altered(verdict, extra[0], tuple(steps[extra[0]]),
                            f"{what} of round {extra[0]}, which the ledger has no record of, "
                            "were inserted (or that round's record was deleted)")
    if verdict.rounds == 0 and verdict.unverified:
        verdict.ok = None
    return verdict


def _altered(v: Verdict, rnd: int | None, steps: tuple[int, int] | None, problem: str
             ) -> Verdict:
    v.ok, v.round, v.steps, v.problem = False, rnd, steps, problem
    return v
