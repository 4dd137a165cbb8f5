"""Argument types for flags: a number in a range, an integer from a bound. Pure, so that any
layer that registers flags (a backend its own, a command its) checks them the same way, while
the line is parsed; argparse then says what is wrong in one line."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def at_least(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An integer in lo..hi."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"must be at least {lo} (got {value})" if hi is None else
                f"must be an integer from {lo} to {hi} (got {value})")
        return value
    parse.__name__ = "integer"
    return parse


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> Callable[[str], float]:
    """A finite number in [lo, hi] (an end is excluded with lo_open / hi_open)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number (got {text!r})") from None
        low_bad = lo is not None and (value <= lo if lo_open else value < lo)
        high_bad = hi is not None and (value >= hi if hi_open else value > hi)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
        if low_bad or high_bad:
            raise argparse.ArgumentTypeError(f"must be {_range(lo, hi, lo_open, hi_open)} "
                                             f"(got {text})")
        return value
    parse.__name__ = "number"
    return parse


def _range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi:g}"
    return "a finite number"
