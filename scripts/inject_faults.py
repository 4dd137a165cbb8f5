"""Fault injection: kill, starve and corrupt `maker-local solve` runs, and say what happened.

Every experiment runs the real CLI as a subprocess (as a user would) and compares the outcome
with an uninterrupted run of the same options and seed:

- kill:    SIGKILL at random rounds, several times, each time continued with --resume;
- starve:  a disk that fills up mid-run (a file-size limit: what a full disk looks like to a
           process, no root needed), a run dir made read-only mid-run (a read-only bind mount
           as root, chmod otherwise), and a fake vLLM server (stdlib http.server, in this
           process) that answers HTTP 500, hangs or resets the connection for a while and
           then recovers, or answers what can never succeed (HTTP 400, truncated JSON) until
           it is fixed and the run is resumed;
- corrupt: copies of a finished and a stopped ledger edited as an outsider would (a vote key
           of an undecided step, a decided step's winning key, a deleted vote row, the file
           truncated); `verify`, `report` and `--resume` must notice and leave it untouched.

"Equal" means the same digest-chain head as the uninterrupted run (`maker-local verify`): the
chain covers every vote, answer and decision (timings left out), so equal heads are equal
ledgers. This script reads and edits ledger tables directly: it plays the outsider.

Prints a table (fault, what the product did, exit codes, ledger verifies?, equal to an
uninterrupted run?) and then one compact JSON line. Exit code 0 when every row shows the
expected outcome, 1 otherwise.

    python scripts/inject_faults.py            # 10 kills of a 10-disk sim run, every fault
    python scripts/inject_faults.py --quick    # small and fast (the test suite runs this)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing


@dataclass
class Row:
    """One experiment: what was done, what the product did, and whether that was expected."""
    fault: str
    did: str
    exit: str  # exit codes in order (-9: killed)
    verifies: bool | None  # the ledger's chain and decisions hold up (None: not asked)
    equal: bool | None  # same result as the uninterrupted run (None: not applicable)
    ok: bool  # the expected outcome
    expected: str


# ------------------------------------------------------------------------- the CLI
def cli(*args: Any, timeout: float = 300, preexec: Callable[[], None] | None = None
        ) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "maker_local.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          preexec_fn=preexec)


def start(*args: Any) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "maker_local.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def verify(run: Path) -> tuple[int, dict[str, Any] | None]:
    """`maker-local verify --json`: exit code and result (None when it could not read it)."""
    r = cli("verify", run, "--json")
    try:
        return r.returncode, json.loads(r.stdout)
    except json.JSONDecodeError:
        return r.returncode, None


def head(run: Path) -> str | None:
    """The run's digest-chain head when its ledger verifies, else None."""
    _, v = verify(run)
    return v["chain"]["head"] if v and v["ok"] else None


def one_line(stderr: str) -> str | None:
    """The single message line of a refusal; None for a traceback or several lines."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return lines[0] if len(lines) == 1 and "Traceback" not in stderr else None


def rounds(run: Path) -> int:
    """Rounds committed so far (read-only; 0 while the ledger is not there yet)."""
    from maker_local.store import Ledger, LedgerError, reads
    if not (run / "ledger.sqlite").exists():
        return 0
    try:
        led = Ledger.read(run)
        try:
            return reads.round_totals(led)[0]
        finally:
            led.close()
    except (LedgerError, sqlite3.Error, OSError):  # not written far enough yet
        return 0


def wait_for_round(proc: subprocess.Popen, run: Path, target: int) -> int:
    """Wait until `target` rounds are committed (or the process ends); the rounds seen."""
    while proc.poll() is None:
        got = rounds(run)
        if got >= target:
            return got
        time.sleep(0.005)
    return rounds(run)


# ----------------------------------------------------------------- the fake vLLM server
OUTAGE_S = 2.0


class FakeServer:
    """A vLLM OpenAI server stand-in: answers each chat request right (the reference answer of
    the step its seed names; one vote in five, by seed, a tempting wrong one) unless a fault
    is queued (`faults`, one per request) or set for every request (`always`)."""

    def __init__(self, disks: int):
        from maker_local.tasks.hanoi import Hanoi
        self.task, self.faults, self.always = Hanoi(disks), [], None
        self.outage: str | None = None  # a fault for every request in a time window
        self.outage_since: float | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.reply(200, json.dumps({"object": "list", "data": [{"id": "fake"}]}))

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fault = fake.always or (fake.faults.pop(0) if fake.faults else None)
                if fake.outage is not None:  # every request for OUTAGE_S from the first
                    now = time.monotonic()
                    fake.outage_since = fake.outage_since or now
                    if now - fake.outage_since < OUTAGE_S:
                        fault = fake.outage
                good = json.dumps(fake.answer(body))
                if fault is None:
                    return self.reply(200, good)
                if fault == "500":
                    return self.reply(500, '{"error": {"message": "engine hiccup"}}')
                if fault == "400":
                    return self.reply(400, '{"error": {"message": "max_tokens is too large"}}')
                if fault == "truncated":
                    return self.reply(200, good[:40])
                if fault == "hang":  # longer than the client's --request-timeout
                    time.sleep(3)
                    return self.reply(200, good)
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                raise ValueError(fault)

            def reply(self, code: int, text: str) -> None:
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *args: None  # a client that gave up: no noise
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        from maker_local.voting.seeds import split_seed

        def text(seed: int) -> str:
            x = self.task.input_at(split_seed(seed)[1])
            if seed % 5 == 3:
                return self.task.text(self.task.wrong_answers(x, 1)[0])
            return self.task.text(self.task.reference(x).answer)
        n = body["n"]
        choices = [{"index": i, "finish_reason": "stop", "token_ids": [1] * 7,
                    "message": {"role": "assistant", "content": text(body["seed"] + i)}}
                   for i in range(n)]
        return {"id": "x", "object": "chat.completion", "choices": choices,
                "usage": {"prompt_tokens": 50, "completion_tokens": 7 * n}}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------ experiments
class Faults:
    """The experiments, sharing one work folder, one set of solve options and the
    uninterrupted runs they are compared with."""

    def __init__(self, args: argparse.Namespace, work: Path):
        self.args, self.work = args, work
        self.rng = random.Random(args.seed)
        self.sim = ["solve", "--backend", "sim", "--disks", args.disks, "--window",
                    args.window, "--k", 3, "--sim-error", 0.05, "--sim-valid", 0.9, "--seed",
                    args.seed, "--quiet"]
        whole = work / "whole"
        r = cli(*self.sim, "--run-dir", whole)
        if r.returncode not in (0, 1):
            raise SystemExit(f"inject_faults: the uninterrupted run failed: {r.stderr.strip()}")
        self.code, self.head = r.returncode, head(whole)
        self.rounds, self.ledger_bytes = rounds(whole), (whole / "ledger.sqlite").stat().st_size
        self.whole = whole

    def resumed(self, run: Path, codes: list[int], *extra: Any) -> tuple[bool, bool, str]:
        """--resume to the end: (verifies, equal to the whole run, exit code) and the codes."""
        r = cli(*self.sim, "--run-dir", run, "--resume", *extra)
        codes.append(r.returncode)
        h = head(run)
        return h is not None, h == self.head and r.returncode == self.code, \
            (one_line(r.stderr) or r.stderr.strip()[-200:]) if r.returncode not in (0, 1) else ""

    # -------------------------------------------------------------------------- kill
    def kills(self) -> Row:
        run, codes, at = self.work / "killed", [], []
        # targets in the first three quarters: the kill lands while the run is still going
        # (rounds can be milliseconds apart, so it lands a round or two later)
        span = range(1, max(2, self.rounds * 3 // 4))
        n = min(self.args.kills, len(span))
        for target in sorted(self.rng.sample(span, n)):
            proc = start(*self.sim, "--run-dir", run, *(["--resume"] if at else []))
            # each resumed run gets at least one round in before it is killed again
            wait_for_round(proc, run, max(target, rounds(run) + 1))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            codes.append(proc.returncode)
            at.append(rounds(run))
            if proc.returncode != -signal.SIGKILL:  # it ended before the kill
                break
        verifies, equal, why = self.resumed(run, codes)
        killed = sum(c == -signal.SIGKILL for c in codes)
        did = (f"killed {killed}x, after rounds {', '.join(map(str, at))} of {self.rounds}; "
               "--resume " + (f"failed: {self.short(why)}" if why else "finished it"))
        return Row(f"SIGKILL x{n} at random rounds, --resume each", did,
                   exit_codes(codes), verifies, equal,
                   killed >= 1 and verifies and equal, "resumes to the uninterrupted result")

    # ------------------------------------------------------------------------ starve
    def stopped_then_resumed(self, fault: str, first: subprocess.CompletedProcess, run: Path,
                             fix: Callable[[], None] = lambda: None, says: str = "--resume",
                             codes: tuple[int, ...] = ()) -> Row:
        """The fault stopped the run (one line saying `says`, exit 2); fixed, --resume ends it
        as a whole run would."""
        line, code = one_line(first.stderr), first.returncode
        fix()
        mid = verify(run)[0] == 0  # what the fault left (read once it can be read again)
        codes = [*codes, code]
        verifies, equal, why = self.resumed(run, codes)
        did = f"stopped: {self.short(line or '(not one line)')}; fixed, --resume " + \
            (f"failed: {self.short(why)}" if why else "finished")
        return Row(fault, did, exit_codes(codes), mid and bool(verifies), equal,
                   code == 2 and line is not None and says in line and mid and
                   bool(verifies and equal),
                   "one line, exit 2, ledger intact; resumes to the uninterrupted result")

    def disk_full(self, at_start: bool = False) -> Row:
        run = self.work / ("full-at-start" if at_start else "full")
        # the write-ahead log outgrows the finished ledger file; below ~150 kB the ledger's
        # creation itself fails (at_start: the run never gets its first round in)
        limit = 60_000 if at_start else max(150_000, self.ledger_bytes // 2)

        def small_disk() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a dead process
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        r = cli(*self.sim, "--run-dir", run, preexec=small_disk)
        when = "as the ledger is made" if at_start else "mid-run"
        return self.stopped_then_resumed(f"disk full {when} (files capped at {limit >> 10} KiB)",
                                         r, run)

    def short(self, message: str, at_most: int = 70) -> str:
        """A message for the table: without the work folder, cut at `at_most` characters."""
        message = message.removeprefix("maker-local: error: ").replace(f"{self.work}/", "")
        return message if len(message) <= at_most else message[:at_most - 3] + "..."

    def read_only(self) -> Row:
        """The run dir turns read-only while a run is under way: killed half way, the dir made
        read-only (a read-only bind mount as root, who ignores permissions; chmod for anyone
        else), then --resume. (A mount cannot turn read-only under a process that writes.)"""
        src, mnt = self.work / "ro-src", self.work / "ro"
        src.mkdir()
        root = os.geteuid() == 0
        if root:
            mnt.mkdir()
            if subprocess.run(["mount", "--bind", src, mnt], capture_output=True).returncode:
                return Row("run dir read-only mid-run", "skipped: root without mount", "-",
                           None, None, True, "(needs mount as root)")
        run = (mnt if root else src) / "run"

        def writable(yes: bool) -> None:
            if root:
                subprocess.run(["mount", "-o", f"remount,bind,{'rw' if yes else 'ro'}", mnt],
                               check=True, capture_output=True)
            else:
                for p in [run, *run.iterdir()]:
                    p.chmod((0o755 if p.is_dir() else 0o644) if yes else
                            (0o555 if p.is_dir() else 0o444))
        try:
            proc = start(*self.sim, "--run-dir", run)
            at = wait_for_round(proc, run, max(1, self.rounds // 2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            writable(False)
            first = cli(*self.sim, "--run-dir", run, "--resume")
            return self.stopped_then_resumed(
                f"run dir read-only mid-run (after round {at}), --resume", first, run,
                lambda: writable(True), says="read-only", codes=(proc.returncode,))
        finally:
            if root:
                subprocess.run(["umount", mnt], capture_output=True)

    # ------------------------------------------------------------------------ server
    def server(self) -> list[Row]:
        disks = 4 if self.args.quick else 6
        fake = FakeServer(disks)
        opts = ["solve", "--backend", "vllm-http", "--base-url", fake.url, "--disks", disks,
                "--k", 2, "--window", 8, "--max-tokens", 200, "--temperature-first", 0.1,
                "--request-timeout", 1, "--seed", self.args.seed, "--quiet"]
        try:
            clean = cli(*opts, "--run-dir", self.work / "served")
            want = head(self.work / "served")
            if clean.returncode != 0 or want is None:
                return [Row("fake server", f"the clean run failed: {clean.stderr[-200:]}",
                            str(clean.returncode), False, False, False, "a clean run")]
            fake.faults = []
            rows = []
            soft = [("HTTP 500 x2, then well", ["500", "500"]),
                    ("hangs past the timeout, then well", ["hang"]),
                    # every connection for 2 s: a client asks a closed connection's
                    # request again once at once, so a reset or two alone is no outage
                    ("resets every connection for 2 s, then well", "reset")]
            for i, (what, faults) in enumerate(soft):
                run = self.work / f"soft{i}"
                if isinstance(faults, str):
                    fake.outage, fake.outage_since = faults, None
                else:
                    fake.faults, fake.outage = list(faults), None
                r = cli(*opts, "--run-dir", run)
                h = head(run)
                said = "next try in" in r.stderr and "Traceback" not in r.stderr
                rows.append(Row(f"server {what}",
                                "asked again with the same seeds (status line); finished"
                                if said else f"no status line: {r.stderr.strip()[-80:]}",
                                str(r.returncode), h is not None, h == want,
                                r.returncode == 0 and said and h == want,
                                "retried with a status line; the uninterrupted result"))
            fake.outage = None
            for what, fault in (("answers HTTP 400 until fixed", "400"),
                                ("answers truncated JSON until fixed", "truncated")):
                run = self.work / f"hard-{fault}"
                fake.always = fault
                r = cli(*opts, "--run-dir", run)
                last = (r.stderr.strip().splitlines() or [""])[-1]
                mid = verify(run)[0] == 0
                fake.always = None
                again = cli(*opts, "--run-dir", run, "--resume")
                h = head(run)
                named = last.startswith("maker-local: stopped:") and fake.url in last
                rows.append(Row(f"server {what}",
                                ("stopped with one line naming the server; fixed, --resume "
                                 "finished") if named else f"said: {last[:80]}",
                                f"{r.returncode} {again.returncode}", mid and h is not None,
                                h == want, r.returncode == 3 and named and mid and
                                "Traceback" not in r.stderr and again.returncode == 0
                                and h == want,
                                "one line, exit 3, no vote; resumes to the uninterrupted "
                                "result"))
            return rows
        finally:
            fake.close()

    # ----------------------------------------------------------------------- corrupt
    def corruptions(self) -> list[Row]:
        # a stopped run with undecided steps that have votes: every step gets 3 samples at
        # most, so the first one that needs more stops the run (exit 3), its votes recorded
        stuck, few = self.work / "stuck", ["--max-samples", 3]
        cli(*self.sim, *few, "--run-dir", stuck)
        refuse = "verify names the step; report and --resume refuse it; left untouched"
        edits: list[tuple[str, Path, list[Any], Callable[[Path], int | None]]] = [
            ("edit a vote key of an undecided step", stuck, few, edit_undecided_key),
            ("edit a decided step's winning key", self.whole, [], edit_winning_key),
            ("delete a vote row", self.whole, [], delete_vote),
            ("truncate the ledger file", self.whole, [], truncate),
        ]
        rows = []
        for i, (what, source, extra, edit) in enumerate(edits):
            run = self.work / f"edited{i}"
            shutil.copytree(source, run)
            step = edit(run)
            if step == -1:
                rows.append(Row(what, "skipped: no undecided step with votes", "-", None,
                                None, False, "a stopped run with votes"))
                continue
            before = (run / "ledger.sqlite").read_bytes()
            code, v = verify(run)
            report = cli("report", run)
            resume = cli(*self.sim, *extra, "--run-dir", run, "--resume")
            untouched = (run / "ledger.sqlite").read_bytes() == before
            refused = all(r.returncode == 2 and one_line(r.stderr) for r in (report, resume))
            if v is None:  # unreadable: verify refuses as report and --resume do
                did = f"all three refuse: {self.short(one_line(report.stderr) or '?')}"
                named = code == 2
            else:
                named = code == 1 and v["first_step"] is not None and (
                    step is None or v["first_step"] == step)
                did = (f"verify names step {v['first_step']}; report and --resume refuse "
                       "it (altered)" if named else f"verify: ok={v['ok']}, first step "
                       f"{v['first_step']} (edited: {step})")
            rows.append(Row(what, did + ("" if untouched else "; the ledger was changed"),
                            f"{code} {report.returncode} {resume.returncode}",
                            v["ok"] if v else False, None,
                            named and refused and untouched and not (v and v["ok"]),
                            refuse if v is not None or code != 2 else
                            "verify, report and --resume refuse with one line; untouched"))
        return rows


# ----------------------------------------------------------------------- the edits
def _sql(run: Path, query: str, args: tuple = ()) -> Any:
    con = sqlite3.connect(run / "ledger.sqlite")
    try:
        with con:
            return con.execute(query, args).fetchone()
    finally:
        con.close()


def _other_key(key: str) -> str:
    """Another well-formed Hanoi vote key: the move's disk changed."""
    move, _, state = key.partition("|")
    d, a, b = move.split(",")
    return f"{int(d) % 3 + 1},{a},{b}|{state}"


def edit_undecided_key(run: Path) -> int | None:
    row = _sql(run, "SELECT step, epoch, id, key FROM answers WHERE step NOT IN "
               "(SELECT step FROM decided) ORDER BY step LIMIT 1")
    if row is None:
        return -1
    _sql(run, "UPDATE answers SET key = ? WHERE step = ? AND epoch = ? AND id = ?",
         (_other_key(row[3]), *row[:3]))
    return None  # the chain names its round; which step verify names first is its call


def edit_winning_key(run: Path) -> int | None:
    step, epoch, aid, key = _sql(
        run, "SELECT a.step, a.epoch, a.id, a.key FROM decided d JOIN answers a ON "
        "a.step = d.step AND a.epoch = d.epoch AND a.id = d.answer ORDER BY d.step DESC LIMIT 1")
    _sql(run, "UPDATE answers SET key = ? WHERE step = ? AND epoch = ? AND id = ?",
         (_other_key(key), step, epoch, aid))
    return step


def delete_vote(run: Path) -> int | None:
    step, idx = _sql(run, "SELECT step, MAX(idx) FROM samples WHERE answer IS NOT NULL AND "
                     "step = (SELECT MAX(step) FROM samples)")
    _sql(run, "DELETE FROM samples WHERE step = ? AND idx = ?", (step, idx))
    return None


def truncate(run: Path) -> int | None:
    db = run / "ledger.sqlite"
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size // 2)
    return None


# --------------------------------------------------------------------------- output
def exit_codes(codes: list[int]) -> str:
    """'-9x10 0' for ten kills and a clean end."""
    out: list[str] = []
    for code in codes:
        last = out[-1].partition("x")[0] if out else None
        if last == str(code):
            n = int(out[-1].partition("x")[2] or 1)
            out[-1] = f"{code}x{n + 1}"
        else:
            out.append(str(code))
    return " ".join(out)


def table(rows: list[Row]) -> str:
    def mark(v: bool | None) -> str:
        return "-" if v is None else "yes" if v else "no"
    head = ("fault", "what the product did", "exit", "verifies", "equal", "")
    cells = [(r.fault, r.did, r.exit, mark(r.verifies), mark(r.equal),
              "ok" if r.ok else "UNEXPECTED") for r in rows]
    widths = [max(len(c) for c in col) for col in zip(head, *cells)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                     for line in [head, *cells])


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--disks", type=int, default=10,
                   help="disks of the sim run that is killed, starved and edited "
                   "(default: %(default)s)")
    p.add_argument("--window", type=int, default=64,
                   help="steps voted at once: smaller means more rounds to kill between "
                   "(default: %(default)s)")
    p.add_argument("--kills", type=int, default=10,
                   help="SIGKILLs of one run before it ends (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="run seed, and the seed of the rounds the kills fall on "
                   "(default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="a small run (6 disks, window 8, 3 kills) and no known-failing "
                   "rows: under a minute, for the tests")
    p.add_argument("--only", choices=("kill", "starve", "server", "corrupt"), action="append",
                   default=None, help="run only these groups (repeat; default: all)")
    p.add_argument("--keep", type=Path, default=None,
                   help="keep the runs in this folder (default: a temporary one, removed)")


def main(args: argparse.Namespace) -> int:
    if args.quick:
        args.disks, args.window, args.kills = 6, 8, 3
    groups = args.only or ["kill", "starve", "server", "corrupt"]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="faults-", dir=args.keep))
    t0 = time.monotonic()
    try:
        f = Faults(args, work)
        rows: list[Row] = []
        if "kill" in groups:
            rows.append(f.kills())
        if "starve" in groups:
            rows += [f.disk_full(), f.read_only()]
            if not args.quick:  # known to fail (Nov 2026): the ledger is left without a config
                rows.append(f.disk_full(at_start=True))
        if "server" in groups:
            rows += f.server()
        if "corrupt" in groups:
            rows += f.corruptions()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    ok = all(r.ok for r in rows)
    print(f"fault injection: {args.disks}-disk sim run, window {args.window}, seed {args.seed}"
          f" ({f.rounds} rounds, exit {f.code} uninterrupted)")
    print(table(rows))
    print(f"{sum(r.ok for r in rows)} of {len(rows)} as expected in "
          f"{time.monotonic() - t0:.0f} s" + ("" if args.keep is None else f"; runs in {work}"))
    print(json.dumps({"disks": args.disks, "window": args.window, "seed": args.seed,
                      "rounds": f.rounds, "ok": ok, "rows": [asdict(r) for r in rows]},
                     separators=(",", ":")))
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_cli_args(parser)
    sys.exit(main(parser.parse_args()))
