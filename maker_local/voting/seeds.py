"""Seeds are a pure function of (run seed, step, vote index).

So a resumed run asks for exactly the samples an uninterrupted run would have asked for, and
the n samples of one request (which vLLM seeds as seed, seed+1, ...) never share a seed with
another request's: each step owns a block of 2^16 consecutive seeds.
"""
from __future__ import annotations

RUN_SEED_BITS = 15
STEP_BITS = 32
INDEX_BITS = 16
MAX_RUN_SEED = (1 << RUN_SEED_BITS) - 1
MAX_SAMPLES_PER_STEP = 1 << INDEX_BITS


def sample_seed(run_seed: int, step: int, index: int) -> int:
    """Seed of vote `index` of `step`; fits a signed 64-bit integer."""
    return (run_seed << (STEP_BITS + INDEX_BITS)) | (step << INDEX_BITS) | index


def split_seed(seed: int) -> tuple[int, int, int]:
    """Inverse of `sample_seed`: (run seed, step, index)."""
    mask = (1 << INDEX_BITS) - 1
    return (seed >> (STEP_BITS + INDEX_BITS), (seed >> INDEX_BITS) & ((1 << STEP_BITS) - 1),
            seed & mask)


class Temperatures:
    """The paper's schedule: the first vote of a step greedy, later votes at `rest`."""

    __slots__ = ("first", "rest")

    def __init__(self, first: float = 0.0, rest: float = 0.1):
        if first < 0 or rest < 0:
            raise ValueError("temperatures must be >= 0")
        self.first = float(first)  # floats, as the ledger's REAL column returns them
        self.rest = float(rest)

    def at(self, index: int) -> float:
        return self.first if index == 0 else self.rest
