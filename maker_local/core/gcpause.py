"""Pausing Python's cyclic garbage collector while code makes millions of acyclic objects.

A voting round makes a few objects per sample (requests, samples, ledger rows) and keeps
many of them alive for the round. CPython's cyclic collector starts every 700 new objects
and walks every young object still alive, then walks it again in each older generation, so
at a million steps it cost about a third of the voting loop here. None of these objects
form cycles (reference counting frees them), so the code that makes them (the schedule, the
sim, the ledger) runs with the collector paused, and when the pause ends what it made and
still holds goes straight to the oldest generation (`gc.freeze()` then `gc.unfreeze()`, two
list splices) instead of being walked young. The caller's setting is restored, so a
backend's own cyclic garbage is collected as before.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector inside the block (or the decorated function)."""
    was = gc.isenabled()
    # a caller that froze objects itself keeps them frozen: then only pause and resume
    promote = gc.get_freeze_count() == 0
    gc.disable()
    try:
        yield
    finally:
        if promote:
            gc.freeze()  # every tracked object, the block's survivors among them ...
            gc.unfreeze()  # ... into the oldest generation, unwalked
        if was:
            gc.enable()
