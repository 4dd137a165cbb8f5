"""The one rule for k: `calibrate` (its recommendation and JSON), `solve --k auto`, `bench`
(its full run and its projection) and `plan` all call `choose_k` here, so one calibration
gives one k, or one refusal, everywhere.

THE RULE. k is the smallest k in 1..K_MAX whose expected wrong decisions over the run's s
steps meet the target t, under the per-step distribution of error rates that the
measurement cannot rule out:  s * -ln(1 - f_k) <= -ln t,  i.e.  P(every step right) =
(1 - f_k)^s >= t,  where f_k = E over steps of P(ahead-by-k decides wrong | q_i) (for
t = 0.95 that is about 0.051 wrong decisions in the whole run). With independent errors
(rho = 0, no hopeless steps) this is exactly the paper's k_min; where errors concentrate,
the beta's tail, not the mean, sets k.

No k: where steps that no k fixes (q_i >= 1/2, "hopeless") alone cost more wrong
decisions than the target allows, `why` is "hopeless": more votes only make their wrong
answer surer, and the commands refuse (`refusal`) and name the levers; where a k above
K_MAX would be needed, `why` is "k_max".

The distribution a calibration plans with (`planning_distribution`), with the uncertainty
the file carries:
- the steps that are not hopeless: the fitted beta, its mean error raised by the width of
  p's 95% interval (with rho = 0 and no hopeless steps, k is k_min at the interval's low end
  p_low, the rule this project always had); rho at its point estimate where its 95%
  interval lies above 0 (the data say errors concentrate), else 0 (noise is not planned
  with: it would move k at random between calibrations of one independent model);
- the hopeless steps the calibration saw (p^_i <= 0.5), as their share at their mean p^_i;
- a file without a correlation block: independent errors at p_low.
A model card's class table plans as point masses (`classes_distribution`): each checked
step's exact p_i, weighted by the steps of its class.

Pure: plain values and dicts in, dataclasses and strings out; no files, no printing (a
command prints `KRule.line`). Only ahead-by-k's odds have these laws: a rule whose class
declares other odds, or none (`rules.plans_k`), is a ValueError.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from .steperrors import StepErrors, wrong_at
from .rules import DEFAULT_RULE, plans_k

K_MAX = 64
LEVERS = ("confirm them with more --samples (calibrate those sizes again); then change what "
          "votes there: --second-opinion PROFILE with --escalate PROFILE, a higher "
          "--temperature, or retraining on those steps")


class Distribution(Protocol):
    """What the rule needs of a per-step distribution of error rates."""

    def wrong_rate(self, k: int) -> float: ...
    def floor_rate(self) -> float: ...
    def share_hopeless(self) -> float: ...


@dataclass(frozen=True)
class Points:
    """A discrete distribution of error rates: steps at rate q[j] with weight w[j] (a card's
    checked steps, each standing for its share of its class)."""

    q: tuple[float, ...]
    w: tuple[float, ...]

    def wrong_rate(self, k: int) -> float:
        return float(np.dot(self.w, wrong_at(np.array(self.q), k)))

    def floor_rate(self) -> float:
        q = np.array(self.q)
        return float(np.dot(self.w, np.where(q > 0.5, 1.0, np.where(q == 0.5, 0.5, 0.0))))

    def share_hopeless(self) -> float:
        return float(np.dot(self.w, np.array(self.q) >= 0.5))


@dataclass(frozen=True)
class KRule:
    """What the rule says for a run: k (None: no k reaches the target), and at k (or at
    K_MAX without one) the expected wrong decisions and P(every step right)."""

    k: int | None
    steps: int
    target: float
    expected_wrong: float
    p_full: float
    floor: float  # wrong decisions no k removes (the hopeless steps' share of the run)
    share_hopeless: float  # share of steps with p_i <= 0.5 under the distribution
    why: str | None  # None, "hopeless" or "k_max"
    where: str = ""  # what the distribution came from, in the words messages use

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "line": self.line()}

    def line(self) -> str:
        """One line: the k and why, or the refusal and what to do."""
        n = f"{self.steps:,}"
        src = f" ({self.where})" if self.where else ""
        if self.k is not None:
            return (f"k={self.k} is the smallest k with P(all {n} steps right) >= "
                    f"{self.target:g}: {self.expected_wrong:.3g} wrong decisions expected"
                    f"{src}")
        if self.why == "hopeless":
            return (f"no k reaches P(all {n} steps right) >= {self.target:g}: "
                    f"{self.share_hopeless:.3%} of steps are right at most half the time, "
                    f"which no k fixes (about {self.floor:,.3g} wrong decisions in {n} steps "
                    f"at any k){src}; {LEVERS}")
        return (f"no k up to {K_MAX} reaches P(all {n} steps right) >= {self.target:g} "
                f"({self.expected_wrong:,.3g} wrong decisions expected at k={K_MAX}){src}; "
                "lower the per-step error first (a stronger model, --second-opinion with "
                "--escalate, retraining)")


def budget(target: float) -> float:
    """Expected wrong decisions a run may have at the target: -ln t."""
    if not 0 < target < 1:
        raise ValueError(f"target success probability must be in (0, 1) (got {target})")
    return -math.log(target)


def _wrong(dist: Distribution, k: int, steps: int) -> float:
    """Expected wrong decisions in `steps` steps at k, as -ln P(every step right): the
    two agree while f_k is small, and this one is exact for the target."""
    f = dist.wrong_rate(k)
    return math.inf if f >= 1 else -steps * math.log1p(-f)


def choose_k(dist: Distribution, steps: int, target: float, rule: str = DEFAULT_RULE,
             where: str = "", k_max: int = K_MAX) -> KRule:
    """THE RULE (module docstring): the smallest k whose expected wrong decisions over
    `steps` steps under `dist` meet `target`, or why none does."""
    if not plans_k(rule):
        raise ValueError(f"k is chosen by the scaling law of {DEFAULT_RULE} voting; with "
                         f"--rule {rule} give --k N")
    if steps < 1:
        raise ValueError(f"steps must be at least 1 (got {steps})")
    allowed = budget(target)
    floor = steps * dist.floor_rate()
    share = dist.share_hopeless()
    if -steps * math.log1p(-0.5 * min(share, 1.0)) > allowed:
        # a step with q >= 1/2 is decided wrong at least half the time at every k: no k
        ew = _wrong(dist, k_max, steps)
        return KRule(None, steps, target, ew, math.exp(-ew), floor, share, "hopeless", where)
    ew = math.inf
    for k in range(1, k_max + 1):
        ew = _wrong(dist, k, steps)
        if ew <= allowed:
            return KRule(k, steps, target, ew, math.exp(-ew), floor, share, None, where)
    why = "hopeless" if floor > allowed else "k_max"
    return KRule(None, steps, target, ew, math.exp(-ew), floor, share, why, where)


def predict(dist: Distribution, k: int, steps: int) -> tuple[float, float]:
    """(expected wrong decisions, P(every step right)) of a run at a given k."""
    ew = _wrong(dist, k, steps)
    return ew, math.exp(-ew)


def prediction_line(dist: Distribution, k: int, steps: int, target: float,
                    where: str = "") -> str:
    """What the distribution predicts for a k the user chose (one line)."""
    ew, pf = predict(dist, k, steps)
    rule = choose_k(dist, steps, target)
    then = (f"the rule picks k={rule.k}" if rule.k is not None else
            f"no k reaches it: {rule.share_hopeless:.3%} of steps are right at most half "
            "the time" if rule.why == "hopeless" else f"no k up to {K_MAX} reaches it")
    return (f"--k {k}: {ew:,.3g} wrong decisions expected in {steps:,} steps, P(all right) "
            f"= {pf:.3g} (target {target:g}; {then})" + (f", by {where}" if where else ""))


# ------------------------------------------------------------------------------ sources
def planning_distribution(cal: dict[str, Any]) -> StepErrors:
    """The per-step distribution a calibration (as loaded) plans with (module docstring)."""
    p = float(cal["p"])
    p_low = min(float(cal.get("p_low", p)), p)
    fit = (cal.get("correlation") or {}).get("fit")
    if fit is None:
        return StepErrors(min(max(1 - p_low, 0.0), 0.999))
    error = min(max(float(fit["error"]) + (p - p_low), 0.0), 0.999)
    # the fitted rho where the data say errors concentrate (its 95% interval above 0), else
    # independent errors: a rho whose interval holds 0 is noise, and planning with it would
    # move k at random between calibrations of one independent model
    low = fit.get("rho_low", (cal.get("correlation") or {}).get("rho_low"))
    rho = float(fit.get("rho", 0.0)) if low is not None and low > 0 else 0.0
    return StepErrors(error, min(max(rho, 0.0), 0.999),
                      float(fit.get("hopeless", 0.0)),
                      min(float(fit.get("hopeless_p", 0.5)), 0.5))


def classes_distribution(table: dict[str, tuple[int, list[float]]]) -> Points:
    """A card's class table {class: (steps in the class, exact p_i of its checked steps)}
    as point masses: each checked step stands for an equal share of its class."""
    total = sum(count for count, ps in table.values() if ps)
    if total <= 0:
        raise ValueError("the class table counts no steps")
    q, w = [], []
    for count, ps in table.values():
        for p in ps:
            q.append(min(max(1.0 - float(p), 0.0), 1.0))
            w.append(count / len(ps) / total)
    return Points(tuple(q), tuple(w))
