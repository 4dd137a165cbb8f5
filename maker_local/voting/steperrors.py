"""How error rates spread over a run's steps, and what voting makes of them: pure arithmetic
(numpy), no I/O. Step i errs at its own rate q_i; a step's votes are independent given q_i.
The steps' rates are a beta with mean e and intraclass correlation rho (the correlation
between two votes of one step: rho = Var(q) / (e (1 - e))), plus a share of *hopeless*
steps (p_i <= 0.5: ahead-by-k converges on their wrong answer, the more surely the larger k).

`StepErrors` integrates any function of q over that distribution by a quadrature in logit
space; every figure stays finite from rho -> 0 (the paper's independent errors, a and b
huge) to rho -> 1 (each step always right or always wrong, a and b tiny) and down to
error -> 0 (`tests/voting/test_correlation.py` checks the closed forms there). The estimators that
fit it to data live in `maker_local.voting.correlation`; the rule that picks k from it in
`maker_local.voting.krule`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import numpy as np

from .scaling import decides_for, votes_to_decide

_U_LO, _U_HI = -60.0, 40.0  # logit range of the quadrature (q from 9e-27 to 1 - 4e-18)


def p_wrong(p: Any, k: int) -> np.ndarray:
    """P(first-to-ahead-by-k decides wrong) for per-vote accuracy p, one wrong answer
    (the gambler's ruin: (1-p)^k / (p^k + (1-p)^k)); valid for every p in [0, 1]."""
    p = np.asarray(p, float)
    return decides_for((1 - p) ** k, p**k)


def wrong_at(q: Any, k: int) -> np.ndarray:
    """`p_wrong` from the error rate q itself: q^k / (q^k + (1-q)^k). Exact where q is
    tiny (p_wrong(1 - q) loses q's digits to the subtraction: 1e-36 read as 0.99993e-36)."""
    q = np.asarray(q, float)
    return decides_for(q**k, (1 - q) ** k)


def votes_needed(p: Any, k: int) -> np.ndarray:
    """Expected valid votes to decide a step at per-vote accuracy p (any p in [0, 1]):
    k (p^k - (1-p)^k) / ((2p - 1)(p^k + (1-p)^k)), k^2 at p = 1/2."""
    p = np.asarray(p, float)
    d = 2 * p - 1
    near = np.abs(d) < 1e-9
    return np.where(near, float(k * k),
                    votes_to_decide(k, np.where(near, 1.0, d), p**k, (1 - p) ** k))


def _logsig(u: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -u)


@dataclass(frozen=True)
class StepErrors:
    """How error rates spread over a run's steps: a share `hopeless` of steps at accuracy
    `hopeless_p` (<= 0.5), the rest a beta with mean `error` and ICC `rho` (rho = 0: every
    step errs at `error`, the paper's independent errors)."""

    error: float
    rho: float = 0.0
    hopeless: float = 0.0
    hopeless_p: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.error < 1:
            raise ValueError(f"error must be in [0, 1) (got {self.error})")
        if not 0 <= self.rho < 1:
            raise ValueError(f"correlation rho must be in [0, 1) (got {self.rho})")
        if not 0 <= self.hopeless <= 1 or not 0 <= self.hopeless_p <= 0.5:
            raise ValueError("hopeless share must be in [0, 1] and their accuracy <= 0.5")

    # ------------------------------------------------------------------ the distribution
    def beta(self) -> tuple[float, float] | None:
        """(a, b) of the beta part, None when it is a point mass (rho = 0 or error = 0)."""
        if self.rho <= 0 or self.error <= 0:
            return None
        s = 1 / self.rho - 1
        return self.error * s, (1 - self.error) * s

    def nodes(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Quadrature of the beta part: error rates q_j, their masses w_j, and the mass left
        below the grid (q < 1e-26, where a step never errs in practice); computed once."""
        return self._nodes

    @cached_property
    def _nodes(self) -> tuple[np.ndarray, np.ndarray, float]:
        ab = self.beta()
        # a beta narrower than a millionth of its mean is a point mass to every figure here
        # (and narrower than the grid can resolve): rho -> 0 is the independent case
        if ab is None or self.rho * (1 - self.error) < 1e-12 * self.error:
            return np.array([self.error]), np.array([1.0]), 0.0
        return _beta_nodes(*ab)

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """E over steps of f(q) (f vectorised over q; may return arrays of shape (..., q))."""
        q, w, _ = self.nodes()
        f0 = np.asarray(f(np.zeros(1)))[..., 0]
        # f(q) - f(0) vanishes where the grid ends; the mass below it counts at f(0)
        body = f0 + ((np.asarray(f(q)) - f0[..., None]) * w).sum(axis=-1)
        if self.hopeless:
            hop = np.asarray(f(np.array([1 - self.hopeless_p])))[..., 0]
            return (1 - self.hopeless) * body + self.hopeless * hop
        return body

    def mean_error(self) -> float:
        """E[q] over all steps, hopeless ones included."""
        return (1 - self.hopeless) * self.error + self.hopeless * (1 - self.hopeless_p)

    def share_hopeless(self) -> float:
        """Share of steps with p_i <= 0.5."""
        q, w, _ = self.nodes()
        return float(self.hopeless + (1 - self.hopeless) * w[q >= 0.5].sum())

    # ------------------------------------------------------------------ what a run sees
    def wrong_rate(self, k: int) -> float:
        """Expected share of steps decided wrong at k."""
        return float(self.expect(lambda q: wrong_at(q, k)))

    def floor_rate(self) -> float:
        """The share of steps decided wrong however large k: those with q > 1/2 always,
        those at q = 1/2 half the time (the limit of `wrong_rate` as k grows)."""
        return float(self.expect(lambda q: np.where(q > 0.5, 1.0, np.where(q == 0.5, 0.5,
                                                                              0.0))))

    def expected_wrong(self, k: int, steps: int) -> float:
        return steps * self.wrong_rate(k)

    def p_full(self, k: int, steps: int) -> float:
        """P(every step right) when each step's p_i is drawn from this distribution."""
        f = self.wrong_rate(k)
        return 0.0 if f >= 1 else math.exp(steps * math.log1p(-f))

    def votes(self, k: int) -> float:
        """Expected valid votes per step."""
        return float(self.expect(lambda q: votes_needed(1 - q, k)))

    def undecided(self, k: int, n: int, steps: int, per: str = "vote", valid: float = 1.0
                  ) -> list[float]:
        """Expected steps still undecided after each of n rounds (the paper's Figure 8).

        per="vote": a round gives every undecided step one more valid vote (the paper's
        Algorithm 2 run over all steps at once; a red-flagged sample is replaced before it
        counts, so `valid` plays no part). per="round": a round asks every undecided step
        for k - margin samples (this project's `rounds` schedule; the first round asks k),
        of which a share 1 - valid is red-flagged and lost.
        """
        if per not in ("vote", "round"):
            raise ValueError(f"per must be 'vote' or 'round' (got {per!r})")
        return [steps * float(x) for x in
                self.expect(lambda q: _undecided(q, k, n, per, valid))]


def _beta_nodes(a: float, b: float) -> tuple[np.ndarray, np.ndarray, float]:
    """A trapezoid grid in logit space, fine where the density lives; masses normalised so
    that grid + the mass below it = 1. The log density is taken relative to its largest
    value on the grid, not to log B(a, b): the normalisation divides it out, and for the
    huge a and b of a correlation near 0 lgamma's cancellation overflowed exp (NaN)."""
    coarse = np.linspace(_U_LO, _U_HI, 10001)
    ld = a * _logsig(coarse) + b * _logsig(-coarse)
    alive = np.flatnonzero(ld >= ld.max() - 40)
    lo = coarse[max(alive[0] - 1, 0)]
    hi = coarse[min(alive[-1] + 1, coarse.size - 1)]
    u = np.linspace(lo, hi, 20001)
    lu = a * _logsig(u) + b * _logsig(-u)
    lb = float(lu.max())  # stands for log B(a, b): any constant cancels below
    w = np.exp(lu - lb)
    w[[0, -1]] *= 0.5
    w *= u[1] - u[0]
    # the tails beyond the grid: the density in logit space is ~ e^(a u) / B below it and
    # ~ e^(-b u) / B above it; the mass above counts at q = 1 (a step that is always wrong)
    below = math.exp(a * lo - lb) / a if lo <= _U_LO + 1e-9 else 0.0
    above = math.exp(-b * hi - lb) / b if hi >= _U_HI - 1e-9 else 0.0
    q = np.append(1 / (1 + np.exp(-u)), 1.0)
    w = np.append(w, above)
    total = w.sum() + below
    return q, w / total, below / total


def _undecided(q: np.ndarray, k: int, n: int, per: str, valid: float) -> np.ndarray:
    """P(undecided after each of n rounds | q), shape (n, q.size): a walk of the margin
    (right minus wrong votes, one wrong answer) absorbed at +-k."""
    d = np.zeros((q.size, 2 * k + 1))
    d[:, k] = 1.0
    right, wrong = (1 - q)[:, None], q[:, None]
    if per == "round":
        right, wrong = valid * right, valid * wrong
    lost = 1.0 - right - wrong  # a red-flagged sample: counted nowhere

    def one(s: np.ndarray) -> np.ndarray:
        t = np.zeros_like(s)
        t[:, 0], t[:, -1] = s[:, 0], s[:, -1]
        mid = s[:, 1:-1]
        t[:, 2:] += mid * right
        t[:, :-2] += mid * wrong
        t[:, 1:-1] += mid * lost
        return t

    out = np.empty((n, q.size))
    for r in range(n):
        if per == "vote":
            d = one(d)
        else:
            nd = d.copy()
            nd[:, 1:-1] = 0.0
            for m in range(1 - k, k):  # margin m asks k - |m| samples this round
                s = np.zeros_like(d)
                s[:, m + k] = d[:, m + k]
                for _ in range(k - abs(m)):
                    s = one(s)
                nd += s
            d = nd
        out[r] = 1.0 - d[:, 0] - d[:, -1]
    return out


