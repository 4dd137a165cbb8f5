"""Pausing Python's cyclic garbage collector while code makes millions of acyclic objects.

A voting round makes a few objects per sample (requests, samples, ledger rows) and keeps
them alive until the round is written. CPython's cyclic collector starts every 700 new
objects and walks every young object still alive, then promotes it and walks it again in
the older generations, so at a million steps it cost about a third of the voting loop here.
None of these objects form cycles (reference counting frees them), so the code that makes
them (the schedule, the sim, the ledger) runs with the collector paused; it runs again
when the pause ends and the caller's setting is restored, so a backend's own cyclic
garbage (asyncio, HTTP clients) is collected as before.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector inside the block (or the decorated function)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
