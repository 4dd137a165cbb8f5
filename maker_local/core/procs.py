"""No orphans: the processes a maker-local process starts die with it, however it dies.

vLLM's in-process engine (`vllm.LLM`) forks an `EngineCore` process, which starts `Worker`
processes; `maker-local serve` starts API servers, each in its own process group, which fork
engines of their own. A SIGTERM or Ctrl-C lets our code stop them, but after a SIGKILL (or an
out-of-memory kill) nothing of ours runs, and they keep the CPU, GPU memory and ports.

`guard_children()` starts a small watchdog process beside the caller. While the caller lives,
the watchdog notes its descendants (pid and start time, read from /proc every
`POLL_S` seconds); when the caller is gone, it sends SIGTERM to every noted process that is
still the same process (and to the process groups they lead), then SIGKILL after `GRACE_S`
seconds, and exits. So nothing outlives the caller by more than about POLL_S + GRACE_S
seconds. The watchdog ignores SIGINT and SIGTERM (a Ctrl-C in the terminal reaches it too;
the caller then shuts its engines down itself) and ends when the caller ends.

Linux only (it reads /proc); elsewhere `guard_children()` does nothing and says so.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.5   # how often the watchdog looks at the caller's descendants
GRACE_S = 3.0  # SIGTERM -> SIGKILL: vLLM's engine shuts down its workers on SIGTERM

_guard: subprocess.Popen | None = None
_guard_pid = -1  # the process that started _guard (a forked child must start its own)


def guard_children() -> int | None:
    """Make sure this process's descendants die with it (idempotent); the watchdog's pid.

    Call it before starting processes that could outlive this one (an in-process vLLM engine,
    servers); it costs one small Python process polling /proc twice a second.
    """
    global _guard, _guard_pid
    if not Path("/proc/self/stat").exists():
        return None  # not Linux: best effort is our own shutdown code
    if _guard is not None and _guard_pid == os.getpid() and _guard.poll() is None:
        return _guard.pid
    _guard = subprocess.Popen(
        [sys.executable, "-m", "maker_local.core.procs", str(os.getpid())],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        close_fds=True, env={**os.environ, "PYTHONPATH": _package_root()})
    _guard_pid = os.getpid()
    return _guard.pid


def _package_root() -> str:
    """PYTHONPATH for the watchdog: this package's parent first (works from a checkout)."""
    root = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{rest}" if rest else root


# ------------------------------------------------------------------------------ /proc
def _stat(pid: int) -> tuple[int, int, int, str] | None:
    """(ppid, pgrp, start time, state) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session tty tpgid flags minflt ... starttime(22nd)": comm may
    # hold spaces and parentheses, so split after the last ')'.
    f = text.rsplit(")", 1)[1].split()
    return int(f[1]), int(f[2]), int(f[19]), f[0]


def processes() -> dict[int, tuple[int, int, int, str]]:
    """Every process: pid -> (ppid, pgrp, start time, state)."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None:
                out[int(entry.name)] = st
    return out


def descendants(root: int, table: dict[int, tuple[int, int, int, str]] | None = None
                ) -> set[int]:
    """Pids of every live descendant of `root` (children, their children, ...)."""
    table = processes() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: set[int] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo += children.get(pid, [])
    return out


def alive(pid: int, start: int) -> bool:
    """Whether `pid` is still the process that started at `start` (not a zombie)."""
    st = _stat(pid)
    return st is not None and st[2] == start and st[3] != "Z"


# ---------------------------------------------------------------------------- watchdog
def watch(parent: int) -> None:
    """Track `parent`'s descendants until it is gone, then end them (the watchdog's body)."""
    me = os.getpid()
    seen: dict[int, tuple[int, int]] = {}  # pid -> (start time, pgrp)

    def note(parent_alive: bool = True) -> None:
        table = processes()
        # once the parent is gone its pid may be reused: follow only what was noted
        found = descendants(parent, table) if parent_alive else set()
        for pid in found | descendants_of_seen(table):
            if pid != me and pid in table:
                seen.setdefault(pid, (table[pid][2], table[pid][1]))

    def descendants_of_seen(table: dict[int, tuple[int, int, int, str]]) -> set[int]:
        # processes started by a noted process after its parent died (it is reparented)
        out: set[int] = set()
        for pid, (start, _) in list(seen.items()):
            if pid in table and table[pid][2] == start:
                out |= descendants(pid, table)
        return out

    while os.getppid() == parent:  # reparented (to init or a subreaper) once it is gone
        note()
        time.sleep(POLL_S)
    note(parent_alive=False)  # whatever the engines started in the last moments
    targets = {pid: v for pid, v in seen.items() if alive(pid, v[0])}
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, (start, pgrp) in targets.items():
            if pgrp == pid and alive(pid, start):  # a group leader: its whole group
                try:
                    os.killpg(pgrp, sig)
                except OSError:
                    pass
            if alive(pid, start):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        deadline = time.monotonic() + (GRACE_S if sig == signal.SIGTERM else 0)
        while time.monotonic() < deadline and any(alive(p, v[0]) for p, v in targets.items()):
            time.sleep(0.1)
            note(parent_alive=False)
            targets |= {p: v for p, v in seen.items() if p not in targets and alive(p, v[0])}


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the caller, not for us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        parent = int(argv[0])
    except (IndexError, ValueError):
        print("usage: python -m maker_local.core.procs PARENT_PID", file=sys.stderr)
        return 2
    if os.getppid() != parent:
        return 0  # the caller is already gone (or this was started by hand)
    watch(parent)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
