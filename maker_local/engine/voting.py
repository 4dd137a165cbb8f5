"""First-to-ahead-by-k voting: sample until one vote key leads every other by k votes."""
from __future__ import annotations


class Voter:
    """Votes of one step. `add` returns True once a key is ahead by k."""

    __slots__ = ("k", "counts", "winner")

    def __init__(self, k: int):
        if k < 1:
            raise ValueError("k must be at least 1")
        self.k = k
        self.counts: dict[str, int] = {}
        self.winner: str | None = None

    @property
    def votes(self) -> int:
        return sum(self.counts.values())

    def leader_and_margin(self) -> tuple[str | None, int]:
        """The key with the most votes (earliest on ties) and its lead over the runner-up."""
        first = second = 0
        leader = None
        for key, c in self.counts.items():
            if c > first:
                leader, first, second = key, c, first
            elif c > second:
                second = c
        return leader, first - second

    def needed(self) -> int:
        """Votes still needed before this step can possibly be decided: k - current margin."""
        return 0 if self.winner is not None else self.k - self.leader_and_margin()[1]

    def add(self, key: str) -> bool:
        if self.winner is not None:
            raise RuntimeError("vote added to a decided step")
        counts = self.counts
        c = counts[key] = counts.get(key, 0) + 1
        if len(counts) == 1:  # the common case: every vote so far agrees
            if c >= self.k:
                self.winner = key
                return True
            return False
        leader, margin = self.leader_and_margin()
        if margin >= self.k:
            self.winner = leader
            return True
        return False


def first_to_k(keys: list[str], k: int) -> tuple[str | None, int]:
    """Replay votes under first-to-k (the first key to reach k votes wins).

    Returns (winner, votes used); winner is None when the votes run out first.
    """
    counts: dict[str, int] = {}
    for i, key in enumerate(keys, 1):
        counts[key] = counts.get(key, 0) + 1
        if counts[key] >= k:
            return key, i
    return None, len(keys)


def ahead_by_k(keys: list[str], k: int) -> tuple[str | None, int]:
    """Replay votes under first-to-ahead-by-k; same return as `first_to_k`."""
    v = Voter(k)
    for i, key in enumerate(keys, 1):
        if v.add(key):
            return v.winner, i
    return None, len(keys)


RULES = {"ahead-by-k": ahead_by_k, "first-to-k": first_to_k}
