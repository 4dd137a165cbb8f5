"""Holding the estimators to known truths: draw votes from a per-step distribution whose
parameters are set (the sim's statistical model: a beta with mean e and ICC rho plus a share
of hopeless steps), run each estimator exactly as its command does, and count how often its
stated 95% interval covers the truth.

- calibrate: every step gets `samples` votes (`measure` over all of them; p's interval);
- a run, ahead-by-k with early stopping: `report` reads its decisions (`from_decisions`),
  `bench` each step's first k votes (`measure` as `from_run` calls it).
Pure numpy, seeded; `tests/analysis/test_coverage.py` runs a small sweep in CI and
`scripts/coverage.py` the full one (its table is in results/coverage/).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..voting.steperrors import StepErrors
from ..voting.correlation import from_decisions, measure, p_interval


@dataclass(frozen=True)
class Truth:
    """What the estimators estimate, computed from the distribution itself."""

    error: float  # E[q] over all steps
    pairs: float  # E[q^2]: the chance that a step's first two votes are both wrong
    rho: float  # the ICC of the whole mixture (hopeless steps included)
    hopeless: float  # share of steps with q >= 1/2

    @property
    def excess(self) -> float:
        """The collision excess E[q^2] / E[q]^2 (1 for independent errors)."""
        return self.pairs / self.error**2 if self.error else 1.0


def truth(dist: StepErrors) -> Truth:
    m = dist.mean_error()
    m2 = float(dist.expect(lambda q: q * q))
    rho = (m2 - m * m) / (m * (1 - m)) if 0 < m < 1 else 0.0
    return Truth(m, m2, rho, dist.share_hopeless())


def draw_rates(dist: StepErrors, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Each step's error rate q_i."""
    ab = dist.beta()
    q = rng.beta(*ab, steps) if ab is not None else np.full(steps, dist.error)
    if dist.hopeless:
        q[rng.random(steps) < dist.hopeless] = 1 - dist.hopeless_p
    return q


def calibrate_once(dist: StepErrors, steps: int, samples: int, rng: np.random.Generator
                   ) -> dict[str, Any]:
    """One calibration of `steps` steps x `samples` votes: calibrate's figures."""
    wrong = rng.random((steps, samples)) < draw_rates(dist, steps, rng)[:, None]
    right = samples - wrong.sum(axis=1)
    collided = (wrong[:, 0] & wrong[:, 1]).astype(np.int64)
    c = measure(right, np.full(steps, samples), collided, steps=2**20 - 1, k=3,
                seed=int(rng.integers(1 << 30)))
    rho = c["rho"] if (c["rho_low"] or 0) > 0 else 0.0  # as calibrate does
    lo, hi = p_interval(int(right.sum()), steps * samples, samples, rho)
    return {"p_low": float(lo), "p_high": float(hi), **_block(c)}


def run_once(dist: StepErrors, steps: int, k: int, rng: np.random.Generator,
             max_votes: int = 80) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run of ahead-by-k over `steps` steps (one wrong answer per step: the worst case
    the laws assume): (report's figures, bench's figures)."""
    q = draw_rates(dist, steps, rng)
    wrong = rng.random((steps, max_votes)) < q[:, None]
    margin = np.cumsum(np.where(wrong, -1, 1), axis=1)
    hit = np.abs(margin) >= k
    done = hit.any(axis=1)  # a step undecided after max_votes is left out (as a stuck step)
    wrong, margin, hit = wrong[done], margin[done], hit[done]
    n = hit.argmax(axis=1) + 1  # votes to decide
    decided_wrong = margin[np.arange(n.size), n - 1] < 0
    collided = (wrong[:, 0] & wrong[:, 1]).astype(np.int64)
    seed = int(rng.integers(1 << 30))
    rep = from_decisions(n, decided_wrong.astype(np.int64), int(collided.sum()), k,
                         2**20 - 1, None, seed)
    first = max(2, k)  # bench: each step's first k votes, all its votes for p_i <= 0.5
    cols = np.arange(max_votes)[None, :]
    counted = cols < n[:, None]
    bench = measure(first - wrong[:, :first].sum(axis=1), np.full(n.size, first), collided,
                    steps=2**20 - 1, k=k, seed=seed,
                    all_right=(counted & ~wrong).sum(axis=1), all_votes=n)
    return _block(rep), _block(bench)


def _block(c: dict[str, Any]) -> dict[str, Any]:
    col = c.get("collisions") or {}
    return {"error": c.get("error"), "rho": c.get("rho"), "rho_low": c.get("rho_low"),
            "rho_high": c.get("rho_high"), "excess": col.get("ratio"),
            "pairs_low": col.get("low"), "pairs_high": col.get("high"),
            "hopeless_at_most": c["hopeless"]["at_most"]}


def covered(lo: float | None, hi: float | None, x: float) -> bool | None:
    """Whether [lo, hi] holds x (None: no interval was given)."""
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return None
    return lo - 1e-12 <= x <= hi + 1e-12


def cell(dist: StepErrors, seeds: int, *, steps: int = 2000, samples: int = 10,
         run_steps: int = 20000, k: int = 3, seed: int = 0) -> dict[str, Any]:
    """Coverage of each estimator's stated 95% interval over `seeds` draws of one setting,
    and the mean of its point estimates against the truth."""
    t = truth(dist)
    rng = np.random.default_rng(seed)
    hits: dict[str, list[bool]] = {}
    means: dict[str, list[float]] = {}

    def note(name: str, got: bool | None) -> None:
        if got is not None:
            hits.setdefault(name, []).append(got)

    def point(name: str, v: float | None) -> None:
        if v is not None:
            means.setdefault(name, []).append(v)

    for _ in range(seeds):
        c = calibrate_once(dist, steps, samples, rng)
        note("calibrate p", covered(c["p_low"], c["p_high"], 1 - t.error))
        note("calibrate rho", covered(c["rho_low"], c["rho_high"], t.rho))
        note("calibrate collisions", covered(c["pairs_low"], c["pairs_high"], t.pairs))
        note("calibrate hopeless <= at_most", t.hopeless <= c["hopeless_at_most"])
        point("calibrate rho", c["rho"])
        rep, ben = run_once(dist, run_steps, k, rng)
        note("report rho", covered(rep["rho_low"], rep["rho_high"], t.rho))
        note("bench rho", covered(ben["rho_low"], ben["rho_high"], t.rho))
        note("bench collisions", covered(ben["pairs_low"], ben["pairs_high"], t.pairs))
        note("bench hopeless <= at_most", t.hopeless <= ben["hopeless_at_most"])
        point("report rho", rep["rho"])
        point("bench rho", ben["rho"])
        point("bench excess", ben["excess"])
        point("report error", rep["error"])
        point("bench error", ben["error"])
    return {"error": dist.error, "rho": dist.rho, "hopeless": dist.hopeless, "seeds": seeds,
            "truth": {"error": t.error, "rho": t.rho, "excess": t.excess,
                      "hopeless": t.hopeless},
            "coverage": {name: sum(v) / len(v) for name, v in hits.items()},
            "intervals": {name: len(v) for name, v in hits.items()},
            "mean": {name: float(np.mean(v)) for name, v in means.items()}}
