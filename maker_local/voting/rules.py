"""Voting rules: when a step's votes decide it. One copy of each rule, used everywhere.

A rule is a class; an instance holds one step's votes (the `Rule` protocol). `add(key)` counts
a vote and returns True once the step is decided; `needed()` is how many more votes could at
best decide it, which is what a round asks the step for in one request. The same classes
vote live (`voting/schedule.py`), replay a finished run's recorded votes
(`analysis/replay.py`) and re-check a ledger (`analysis/verify.py`), so live voting and its
checks cannot drift apart.

- `ahead-by-k` (MAKER's first-to-ahead-by-k, the default): sample until one vote key leads
  every other by k votes.
- `first-to-k`: sample until one vote key has k votes (cheaper per step, less safe: two
  answers that split the votes race to k instead of one pulling ahead).

The rule is part of a run's identity (`run.RunSpec.identity`); ledgers written before it
was recorded were voted under ahead-by-k (`rule_of`).

A rule also says which odds decide its steps (`odds`): k auto (`voting.krule`,
`analysis.accuracy`) plans only with odds it has the scaling laws of (`plans_k`): ahead-by-k's
gambler's ruin (`voting.scaling`). A rule with no odds written (first-to-k) runs at a k given
with --k N. A new rule is one class here and one line in `RULES`.
"""
from __future__ import annotations

from typing import Any, ClassVar, Protocol

from ..core.errors import unknown

DEFAULT_RULE = "ahead-by-k"
# the odds k auto has scaling laws for (voting/scaling.py, voting/steperrors.py): those of
# ahead-by-k, the gambler's ruin of a margin that must reach k
PLANNED_ODDS = "ahead-by-k"


class Rule(Protocol):
    """The votes of one step under a voting rule."""

    name: ClassVar[str]
    odds: ClassVar[str | None]  # the odds that decide its steps (None: none written)
    k: int
    counts: dict[str, int]  # vote key -> votes, in order of first appearance
    winner: str | None  # set by the vote that decides the step

    def __init__(self, k: int) -> None: ...
    def add(self, key: str) -> bool: ...
    def needed(self) -> int: ...
    @property
    def votes(self) -> int: ...
    def leader_and_margin(self) -> tuple[str | None, int]: ...


class _Votes:
    """What every rule keeps: the counts per key and the winner once decided."""

    __slots__ = ("k", "counts", "winner")
    name: ClassVar[str] = ""
    # whose scaling laws give this rule's odds (PLANNED_ODDS: k auto can plan it); None: no
    # law is written for it, so k auto refuses it and asks for --k N
    odds: ClassVar[str | None] = None

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


class AheadByK(_Votes):
    """First-to-ahead-by-k: decided once one key leads every other by k votes."""

    __slots__ = ()
    name = "ahead-by-k"
    odds = PLANNED_ODDS

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


class FirstToK(_Votes):
    """First-to-k: decided once one key has k votes."""

    __slots__ = ()
    name = "first-to-k"

    def needed(self) -> int:
        """Votes still needed before this step can possibly be decided: k - the top count."""
        if self.winner is not None:
            return 0
        return self.k - max(self.counts.values(), default=0)

    def add(self, key: str) -> bool:
        if self.winner is not None:
            raise RuntimeError("vote added to a decided step")
        c = self.counts[key] = self.counts.get(key, 0) + 1
        if c >= self.k:
            self.winner = key
            return True
        return False


RULES: dict[str, type[_Votes]] = {AheadByK.name: AheadByK, FirstToK.name: FirstToK}


def get_rule(name: str) -> type[_Votes]:
    """The rule class for a name; ValueError with the names there are (and a near miss)."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(unknown("voting rule", name, list(RULES))) from None


def plans_k(name: str) -> bool:
    """Whether k auto can pick k for the rule `name`: its odds are the ones the scaling laws
    are written for (PLANNED_ODDS); ValueError for a name that is no rule."""
    return get_rule(name).odds == PLANNED_ODDS


def rule_of(run: dict[str, Any]) -> str:
    """The voting rule of a run's identity (a ledger's config["run"]); ledgers written
    before the rule was recorded were voted under ahead-by-k."""
    return run.get("rule") or DEFAULT_RULE


def label(rule: str, k: int) -> str:
    """'ahead-by-3', 'first-to-5': a rule at a k, as reports name it."""
    return rule.replace("-k", f"-{k}") if rule.endswith("-k") else f"{rule} k={k}"
