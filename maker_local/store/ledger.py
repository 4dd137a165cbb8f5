"""One SQLite file per run (WAL), numbered migrations, one transaction per voting round.

Every sample is a row (step, vote index, epoch, round, seed, temperature, answer, red flag,
tokens, latency; raw text for the samples the schedule chose to keep). Distinct answers of a
step are rows of `answers` (the vote key once, not per sample); final decisions are rows of
`decided`. A process killed at any moment leaves the ledger at the end of its last committed
round, which is exactly the state an uninterrupted run had then: `resume_state` rebuilds it.
Each round's digest chains to the one before (`integrity.py`), so an edit is noticed.
"""
from __future__ import annotations

import fcntl
import itertools
import json
import os
import sqlite3
import time
from operator import attrgetter
from pathlib import Path
from typing import Any, Iterator

from ..core.gcpause import gc_paused
from ..core.records import (AnswerRow, DecisionRow, SampleRow, answer_values, columns,
                            decision_values, sample_values)
from . import integrity

# meta key of the requests and failures per server: {url: {"requests": n, "failures": n}}
ENDPOINTS_META = "endpoints"
LEDGER_NAME = "ledger.sqlite"


class LedgerError(Exception):
    """A ledger that cannot be used as asked; the message says what to do."""


MIGRATIONS: list[tuple[str, str]] = [
    ("initial", """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE samples(
    step INTEGER NOT NULL, idx INTEGER NOT NULL, epoch INTEGER NOT NULL,
    round INTEGER NOT NULL, seed INTEGER NOT NULL, temperature REAL NOT NULL,
    answer INTEGER, flag TEXT, detail TEXT,
    tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, tokens_reasoning INTEGER NOT NULL,
    latency_ms REAL NOT NULL, text TEXT,
    PRIMARY KEY(step, idx)) WITHOUT ROWID;
CREATE TABLE answers(
    step INTEGER NOT NULL, epoch INTEGER NOT NULL, id INTEGER NOT NULL,
    key TEXT NOT NULL, correct INTEGER,
    PRIMARY KEY(step, epoch, id)) WITHOUT ROWID;
CREATE TABLE decided(
    step INTEGER PRIMARY KEY, epoch INTEGER NOT NULL, answer INTEGER NOT NULL,
    votes INTEGER NOT NULL, samples INTEGER NOT NULL, rounds INTEGER NOT NULL,
    margin INTEGER NOT NULL, decided_round INTEGER NOT NULL,
    divergent INTEGER NOT NULL, correct INTEGER);
CREATE TABLE rounds(
    round INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL NOT NULL,
    requests INTEGER NOT NULL, samples INTEGER NOT NULL, decided INTEGER NOT NULL);
"""),
    # failed attempts at requests (asked again with the same seeds; never votes)
    ("failures", """
CREATE TABLE failures(
    at REAL NOT NULL, round INTEGER NOT NULL, step INTEGER NOT NULL, idx INTEGER NOT NULL,
    n INTEGER NOT NULL, seed INTEGER NOT NULL, retryable INTEGER, error TEXT NOT NULL);
"""),
    # a digest per round chained to the one before (integrity.py); answers and decisions
    # record the round that added them, so a round's rows can be hashed again
    ("digests", """
ALTER TABLE answers ADD COLUMN round INTEGER;
ALTER TABLE decided ADD COLUMN round INTEGER;
ALTER TABLE rounds ADD COLUMN digest TEXT;
"""),
    # who cast each sample: an index into the run's sources (voting/pool.py; config["run"]
    # ["pool"]["sources"] names them); 0, the run's own model, for a run without a pool
    ("sources", """
ALTER TABLE samples ADD COLUMN source INTEGER NOT NULL DEFAULT 0;
"""),
]


def _insert(table: str, record: type, round_: str = "", rows: int = 1) -> str:
    """INSERT naming the record's fields as columns (plus the round that adds the row), for
    `rows` rows at once."""
    cols = columns(record)
    names = ", ".join(cols) + (", round" if round_ else "")
    marks = "(" + ", ".join("?" * len(cols)) + (f", {round_}" if round_ else "") + ")"
    return f"INSERT INTO {table} ({names}) VALUES {', '.join([marks] * rows)}"


# Rows per INSERT statement when a round is written: one statement step per 64 rows instead
# of per row costs a quarter less CPU for the same rows (64 x 14 values stays under the
# 999 bound that old SQLite builds put on variables).
BATCH = 64


def _insert_all(con: sqlite3.Connection, table: str, record: type, values: list[tuple],
                round_: str = "") -> None:
    """Insert rows (tuples of the record's columns, in order) BATCH at a time."""
    full = len(values) - len(values) % BATCH
    if full:  # zip of one iterator BATCH * width times: the flat values in statement-sized runs
        flat = itertools.chain.from_iterable(values[:full])
        con.executemany(_insert(table, record, round_, BATCH),
                        zip(*[flat] * (BATCH * len(columns(record)))))
    if full < len(values):
        con.executemany(_insert(table, record, round_), values[full:])


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    uri = f"file:{path}?mode={'ro' if readonly else 'rwc'}"
    con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA busy_timeout = 5000")
    return con


def _damaged(path: Path, why: str) -> LedgerError:
    return LedgerError(f"{path} is not a readable maker-local ledger ({why}); it was left "
                       "untouched: restore it from a copy, or start over with another --run-dir")


class Ledger:
    """A run's ledger. Use `Ledger.create` for a new run and `Ledger.open` for an existing one."""

    def __init__(self, path: Path, con: sqlite3.Connection, lock: int):
        self.path, self.con, self._lock = path, con, lock
        self._head: str | None = None  # digest of the last round (set when writing)
        # what this process knows of the chain: rounds it re-read (`verify`, at a resume)
        # and rounds it wrote; None when neither covers the whole ledger
        self._known: integrity.Verdict | None = None

    # ----------------------------------------------------------------------- open / create
    @staticmethod
    def _take_lock(run_dir: Path) -> int:
        fd = os.open(run_dir / "ledger.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LedgerError(f"another maker-local process is using {run_dir}; wait for it "
                              "to finish or stop it first") from None
        return fd

    @classmethod
    def check(cls, path: Path, thorough: bool = True) -> dict[str, Any]:
        """Validate an existing ledger without writing to it; return its config.

        `thorough` reads every page (PRAGMA quick_check) before a run writes to it again.
        """
        if path.stat().st_size < 512:
            raise _damaged(path, "the file is truncated")
        try:
            con = _connect(path, readonly=True)
            try:
                rows = con.execute("PRAGMA quick_check").fetchall() if thorough else [("ok",)]
                if rows != [("ok",)]:
                    raise _damaged(path, f"integrity check: {rows[0][0]}")
                have = con.execute("SELECT MAX(version) FROM migrations").fetchone()[0]
                cfg = con.execute("SELECT value FROM meta WHERE key='config'").fetchone()
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            raise _damaged(path, str(e)) from None
        if cfg is None:
            raise _damaged(path, "it holds no run configuration")
        if have > len(MIGRATIONS):
            raise LedgerError(f"{path} was written by a newer maker-local (schema {have}); "
                              "upgrade maker-local to read it")
        return json.loads(cfg[0])

    @classmethod
    def create(cls, run_dir: Path, config: dict[str, Any]) -> "Ledger":
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LEDGER_NAME
        lock = cls._take_lock(run_dir)
        if path.exists():
            os.close(lock)
            raise LedgerError(f"{run_dir} already holds a run; add --resume to continue it, "
                              "or choose another --run-dir")
        con = _connect(path)
        led = cls(path, con, lock)
        led._migrate()
        led._known = integrity.Verdict(True, checked="as written")  # nothing to re-read yet
        with led.transaction():
            con.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("config", json.dumps(config, sort_keys=True)),
                ("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
            ])
        return led

    @classmethod
    def open(cls, run_dir: Path) -> "Ledger":
        path = run_dir / LEDGER_NAME
        if not path.exists():
            raise LedgerError(f"no ledger in {run_dir}; start a run there with maker-local solve")
        lock = cls._take_lock(run_dir)
        try:
            cls.check(path)
        except LedgerError:
            os.close(lock)
            raise
        led = cls(path, _connect(path), lock)
        led._migrate()
        return led

    @classmethod
    def read(cls, run_dir: Path) -> "Ledger":
        """Open for reading only (reports): no lock, no migration, no writes."""
        path = run_dir / LEDGER_NAME
        if not path.exists():
            raise LedgerError(f"no ledger in {run_dir}; is this a maker-local run dir?")
        cls.check(path, thorough=False)
        return cls(path, _connect(path, readonly=True), -1)

    def _migrate(self) -> None:
        con = self.con
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("CREATE TABLE IF NOT EXISTS migrations("
                    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)")
        have = con.execute("SELECT COALESCE(MAX(version), 0) FROM migrations").fetchone()[0]
        for version, (name, sql) in enumerate(MIGRATIONS, 1):
            if version <= have:
                continue
            with self.transaction():
                for stmt in filter(str.strip, sql.split(";")):
                    con.execute(stmt)
                con.execute("INSERT INTO migrations VALUES (?, ?, ?)",
                            (version, name, time.strftime("%Y-%m-%dT%H:%M:%S%z")))

    def close(self) -> None:
        self.con.close()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def transaction(self) -> "_Tx":
        return _Tx(self.con)

    # -------------------------------------------------------------------------- access
    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.meta("config"))

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def head(self) -> str:
        """The digest the next round chains to: the last round's, or the configuration's."""
        if self._head is None:
            last = self.con.execute("SELECT digest FROM rounds WHERE digest IS NOT NULL "
                                    "ORDER BY round DESC LIMIT 1").fetchone()
            self._head = last[0] if last else integrity.genesis(self.meta("config") or "")
        return self._head

    @gc_paused()
    def write_round(self, rows: Any, started: float, finished: float, requests: int) -> None:
        """Persist one round (a `RoundRows`: its SampleRow, AnswerRow and DecisionRow
        records, inserted by name; timing; digest) atomically."""
        con = self.con
        rnd = int(rows.round)
        round_row = (rnd, started, finished, requests, len(rows.samples), len(rows.decided))
        samples, answers, decided = rows.samples, rows.answers, rows.decided
        if not getattr(rows, "ordered", False):  # a schedule's rows come in key order
            samples = sorted(samples, key=attrgetter("step", "idx"))
            answers = sorted(answers, key=attrgetter("step", "epoch", "id"))
            decided = sorted(decided, key=attrgetter("step"))
        # each row's column tuple, made once: hashed, then inserted
        s, a, d = (list(map(sample_values, samples)), list(map(answer_values, answers)),
                   list(map(decision_values, decided)))
        digest = integrity.values_digest(self.head(), round_row, s, a, d)
        with self.transaction():
            _insert_all(con, "samples", SampleRow, s)
            _insert_all(con, "answers", AnswerRow, a, str(rnd))
            _insert_all(con, "decided", DecisionRow, d, str(rnd))
            con.execute("INSERT INTO rounds VALUES (?,?,?,?,?,?,?)", (*round_row, digest))
        self._head = digest
        if self._known is not None:
            self._known.rounds += 1
            self._known.head = digest

    def verify(self) -> "integrity.Verdict":
        """Check every round's digest against its rows (see integrity.py)."""
        verdict = integrity.verify(self.con)
        if verdict.ok:  # what this process writes next extends a chain it has checked
            self._known = integrity.Verdict(True, verdict.rounds, verdict.unverified,
                                            verdict.head, checked="as written")
        return verdict

    def chain_verdict(self) -> "integrity.Verdict | None":
        """The chain as this process knows it without reading the file again: the rounds
        `verify` re-read when the ledger was opened plus every round written since, each
        digest computed from the rows written in the same transaction. None when this
        process neither created the ledger nor verified it (then re-read it: `verify`)."""
        if self._known is None:
            return None
        return integrity.Verdict(**vars(self._known))

    def write_failures(self, round_: int, failed: list[tuple[Any, Any]]) -> None:
        """Count failed attempts at requests: (SampleRequest, its first error Sample) pairs."""
        at = time.time()
        with self.transaction():
            self.con.executemany("INSERT INTO failures VALUES (?,?,?,?,?,?,?,?)", [
                (at, round_, r.step, r.first_index, r.n, r.seed,
                 None if e.retryable is None else int(e.retryable), e.error or "")
                for r, e in failed])

    @gc_paused()
    def resume_state(self, start: int = 0) -> dict[str, Any]:
        """What `Schedule.restore` needs, read from the ledger alone (`start`: the first
        step of a slice run), but the chain: "keys" is None when every decision agreed with
        the reference (the chain is the reference's), else the decided vote keys in step
        order (an iterator over the ledger: read it before the next write). The caller
        derives the input of step "done" from them (`engine.chain.chain_input`)."""
        q = self.con.execute
        done, epoch, off_ref = q("SELECT COUNT(*), COALESCE(SUM(divergent), 0), "
                                 "COALESCE(SUM(correct IS NOT 1), 0) FROM decided").fetchone()
        done += start
        last = q("SELECT COALESCE(MAX(step), ?) FROM decided", (start - 1,)).fetchone()[0]
        if last != done - 1:
            raise _damaged(self.path, "decided steps are not a prefix of the run")
        rounds = q("SELECT COALESCE(MAX(round) + 1, 0) FROM rounds").fetchone()[0]
        used = dict(q("SELECT step, MAX(idx) + 1 FROM samples WHERE step >= ? GROUP BY step",
                      (done,)))
        replay: dict[int, list[tuple[int, int, str | None, int]]] = {}
        for step, idx, rnd, key, source in q(
                "SELECT s.step, s.idx, s.round, a.key, s.source FROM samples s "
                "LEFT JOIN answers a "
                "ON a.step = s.step AND a.epoch = s.epoch AND a.id = s.answer "
                "WHERE s.step >= ? AND s.epoch = ? ORDER BY s.step, s.idx", (done, epoch)):
            replay.setdefault(step, []).append((idx, rnd, key, source))
        return {"done": done, "epoch": epoch, "rounds": rounds,
                "keys": None if off_ref == 0 else self._decided_keys(),
                "used": used, "replay": replay}

    def _decided_keys(self) -> Iterator[str]:
        """The winning vote key of every decided step, in step order (one row at a time: a
        million-step chain is not held in memory)."""
        for (key,) in self.con.execute(
                "SELECT a.key FROM decided d JOIN answers a ON a.step = d.step "
                "AND a.epoch = d.epoch AND a.id = d.answer ORDER BY d.step"):
            yield key


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")
