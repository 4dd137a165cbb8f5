"""Engine output to a file: the terminal keeps the progress bar and the summary.

An in-process engine (vLLM, transformers) prints dozens of lines while it starts, from this
process and from the engine processes it spawns. `EngineLog(path).start()` points file
descriptor 2, which those processes inherit, at `path` until `stop()`; once the engine is up,
`terminal()` gives Python's `sys.stderr` (our own messages, the progress bar) a copy of the
terminal. vLLM's own logger writes to `sys.__stderr__` (set before vLLM is imported), i.e. to
the file. Start it only
after every option is checked, right before the engine starts: a refused command makes no
file.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


class EngineLog:
    def __init__(self, path: Path | None):
        self.path = path  # None: leave the terminal as it is (-v)
        self._saved: int | None = None
        self._old: Any = None

    def start(self) -> None:
        if self.path is None or self._saved is not None:
            return
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.__stderr__")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = os.dup(2)
        with open(self.path, "ab") as log:
            os.dup2(log.fileno(), 2)
        os.write(self._saved, f"maker-local: engine logs go to {self.path} (-v shows them "
                              "here)\n".encode())

    def terminal(self) -> None:
        """Once the engine has started: our own messages and the progress bar go to the
        terminal again (what the engine prints still goes to the log)."""
        if self._saved is None or self._old is not None:
            return
        sys.stderr.flush()
        self._old = sys.stderr
        sys.stderr = os.fdopen(os.dup(self._saved), "w", buffering=1,
                               encoding=getattr(self._old, "encoding", None) or "utf-8")

    def stop(self) -> None:
        if self._saved is None:
            return
        sys.stderr.flush()
        if self._old is not None:
            term, sys.stderr = sys.stderr, self._old
            term.close()
            self._old = None
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._saved = None
