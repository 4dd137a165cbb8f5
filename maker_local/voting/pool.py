"""Several voters on one step: second opinions, prompt pools and escalation.

MAKER's voting assumes that a step's votes err independently. Real models are not like that:
on a few hard steps a model is consistently wrong, and more votes of the same model only
make the wrong answer certain. The levers here ask someone else.

A *source* is one way of asking for a vote: a model (its profile), a rendering of the prompt
(the task's style) and the engine that runs it. A run's sources are numbered; source 0 is the
run's own model, and the ledger records the source of every sample. A `Plan` says which
source casts each vote of a step:

- **rotation** (a second opinion, a prompt pool): vote i of a step is cast by
  `rotation[i % len(rotation)]`. A second opinion puts other models in the rotation, a
  prompt pool other renderings of the same model.
- **escalation**: a step still undecided after `contest_after` valid votes of the rotation is
  *contested*. Its later votes come from the escalation sources (rotating among them from the
  vote index at which the step was contested), and only those votes decide it: the run's rule
  at the run's k, counted from zero. The rotation's votes stay in the ledger.

The combining rule (`PoolVotes`): before escalation a step is decided when the run's rule
decides the pooled votes of the rotation AND every source that has cast a valid vote has that
answer as its own strict top answer. Pooled ahead-by-k alone is not safe: a model that insists
on a wrong answer against one that insists on the right one makes W, R, W, R, ... a random walk
that ends at either answer. The agreement condition turns such a split into a stall; the stall
makes the step contested, and a contested step goes to the escalation sources, or stops the run
(`Contested`) when there are none: a step the sources disagree on is never decided by luck.

Which source casts vote i is a function of the plan and of the step's own recorded votes (the
index at which it was contested), so a resumed run asks exactly what an uninterrupted one
would, with the same seeds (`voting/seeds.py`: a pure function of run seed, step and vote
index). No choice of source and no decision reads the task's reference.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .seeds import Temperatures
from .rules import Rule


@dataclass(frozen=True)
class Source:
    """One voter: a model in a rendering on an engine, with its own sampling settings."""

    name: str  # the profile (or model) it comes from
    task: Any  # the task in this source's rendering (style): renders prompts, parses answers
    temperatures: Temperatures
    max_tokens: int
    constrained: bool = True
    drafts: bool = False  # its engine samples against the step's draft answer
    engine: dict[str, Any] = field(default_factory=dict)  # its backend's describe()

    def describe(self) -> dict[str, Any]:
        """What the run's identity and the ledger record about this source."""
        return {"name": self.name, "style": self.task.style, "engine": self.engine,
                "temperature_first": self.temperatures.first,
                "temperature": self.temperatures.rest, "max_tokens": self.max_tokens,
                "constrained": self.constrained}


@dataclass(frozen=True)
class Plan:
    """Which source casts each vote of a step (see the module's docstring)."""

    rotation: tuple[int, ...] = (0,)
    escalate: tuple[int, ...] = ()
    contest_after: int = 0  # valid rotation votes that make an undecided step contested

    def __post_init__(self) -> None:
        if not self.rotation:
            raise ValueError("a pool needs at least one source in its rotation")
        if set(self.rotation) & set(self.escalate):
            raise ValueError("an escalation source cannot also be in the rotation: it would "
                             "count both before and after the step is contested")
        if self.contest_after < 1:
            raise ValueError("contest_after must be at least 1 vote")

    def identity(self) -> dict[str, Any]:
        return {"rotation": list(self.rotation), "escalate": list(self.escalate),
                "contest_after": self.contest_after}


@dataclass(frozen=True)
class Pool:
    """A run's sources and its plan."""

    sources: tuple[Source, ...]
    plan: Plan

    def __post_init__(self) -> None:
        used = set(self.plan.rotation) | set(self.plan.escalate)
        if not used <= set(range(len(self.sources))):
            raise ValueError(f"the plan names sources {sorted(used)} of {len(self.sources)}")

    def identity(self) -> dict[str, Any]:
        return {**self.plan.identity(), "sources": [s.describe() for s in self.sources]}

    def label(self, source: int) -> str:
        s = self.sources[source]
        return f"{s.name} ({s.task.style})"


class Contested(Exception):
    """A step whose sources disagree, with nowhere to escalate it."""

    def __init__(self, step: int, by_source: dict[int, dict[str, int]], names: list[str]):
        self.step, self.by_source = step, by_source
        said = "; ".join(f"{names[s]}: " + ", ".join(f"{key} x{n}" for key, n in
                                                    sorted(c.items(), key=lambda kv: -kv[1]))
                         for s, c in sorted(by_source.items()))
        super().__init__(f"step {step} is contested: its sources disagree ({said}) and the "
                         "run has no escalation. Nothing was decided for it; the votes are "
                         "in the ledger. Start the run again with --escalate PROFILE (a "
                         "model that settles such steps) in a new --run-dir")


def strict_top(counts: dict[str, int]) -> str | None:
    """The key with the most votes, None when two keys share the most."""
    best, top, tied = None, 0, False
    for key, c in counts.items():
        if c > top:
            best, top, tied = key, c, False
        elif c == top:
            tied = True
    return None if tied else best


class PoolVotes:
    """The votes of one step of a pooled run (the `Rule` protocol, with the source of each
    vote). `counts`, `votes` and `leader_and_margin` are those of the votes that count now:
    the rotation's, or the escalation's once the step is contested."""

    __slots__ = ("k", "plan", "pooled", "by_source", "esc", "esc_start", "winner",
                 "contested", "_rule", "_escalate")

    def __init__(self, rule: type, k: int, plan: Plan):
        self.k, self.plan, self._rule = k, plan, rule
        self._escalate = frozenset(plan.escalate)
        self.pooled: Rule = rule(k)  # counts only: its add() is never called
        self.by_source: dict[int, dict[str, int]] = {}
        self.esc: Rule | None = None  # the escalation's own race, once contested
        self.esc_start: int | None = None  # vote index of the first escalated vote
        self.winner: str | None = None
        self.contested = False

    @property
    def counts(self) -> dict[str, int]:
        return (self.esc or self.pooled).counts

    @property
    def votes(self) -> int:
        return (self.esc or self.pooled).votes

    def leader_and_margin(self) -> tuple[str | None, int]:
        return (self.esc or self.pooled).leader_and_margin()

    def source_at(self, index: int) -> int:
        """The source that casts vote `index` (asked in this order: indices only grow)."""
        plan = self.plan
        if self.esc is not None:
            if self.esc_start is None:
                self.esc_start = index
            return plan.escalate[(index - self.esc_start) % len(plan.escalate)]
        return plan.rotation[index % len(plan.rotation)]

    def seen(self, index: int, source: int) -> None:
        """A recorded sample (valid or not) of `source` at `index`, in index order, when a
        run is rebuilt from its ledger: where the escalation started."""
        if self.esc is not None and self.esc_start is None and source in self._escalate:
            self.esc_start = index

    def needed(self) -> int:
        """Votes to ask for now: at least 1 while undecided, and never past the point where
        the step would be contested (the votes after it come from elsewhere)."""
        if self.winner is not None or (self.contested and self.esc is None):
            return 0
        if self.esc is not None:
            return self.esc.needed()
        need = max(1, self.pooled.needed())
        return max(1, min(need, self.plan.contest_after - self.pooled.votes))

    def add(self, key: str, source: int = 0) -> bool:
        """Count a valid vote of `source`; True once the step is decided."""
        if self.winner is not None:
            raise RuntimeError("vote added to a decided step")
        if self.esc is not None:
            if source not in self._escalate:
                return False  # asked before the step was contested: kept, not counted
            if self.esc.add(key):
                self.winner = key
                return True
            return False
        if self.contested:  # contested with no escalation: nothing counts any more
            return False
        mine = self.by_source.setdefault(source, {})
        mine[key] = mine.get(key, 0) + 1
        counts = self.pooled.counts
        counts[key] = counts.get(key, 0) + 1
        if self.pooled.needed() <= 0:
            leader = self.pooled.leader_and_margin()[0]
            if all(strict_top(c) == leader for c in self.by_source.values()):
                self.winner = leader
                return True
        if self.pooled.votes >= self.plan.contest_after:
            self.contested = True
            if self.plan.escalate:
                self.esc = self._rule(self.k)
        return False


def plan_of(run: dict[str, Any]) -> Plan | None:
    """The plan of a run's identity (a ledger's config["run"]); None for a run without a
    pool."""
    d = run.get("pool")
    if not d:
        return None
    return Plan(tuple(d["rotation"]), tuple(d["escalate"]), int(d["contest_after"]))
