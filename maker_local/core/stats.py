"""Statistics of samples, pure (numpy only): Wilson intervals, rates, distributions, error
by output length, and whether errors concentrate on some steps (heterogeneity).

Calibration (`calibrate/estimate.py`) and the HTML report use them; nothing here reads a
file, a ledger or a backend.

The heterogeneity-aware success estimate (key `success`):
- Per step i, the race that matters is the right answer (c_i votes) against its most frequent
  wrong answer (w_i). Plug-in two-player accuracy, shrunk by one pseudo-vote toward the pooled
  q = sum c / sum (c + w), so a step with no observed error is not taken as certain:
  q_i = (c_i + q) / (c_i + w_i + 1). Its first-to-ahead-by-k win probability is the
  gambler's-ruin value P_i(k) = 1 / (1 + ((1 - q_i) / q_i)^k); the run's per-step failure is the
  mean F(k) = mean_i (1 - P_i(k)) and p_full = (1 - F(k))^s.
- Small-sample bias: with R samples a step's q_i is noisy, and since 1 - P(k) is convex in the
  error, noise alone makes the plug-in F(k) larger than the truth (much larger at big k); with
  errors rarer than 1/R it cannot see them at all. So the same estimator is run on B parametric
  bootstrap calibrations of the same design with *independent* errors at q ("null"): its mean
  minus the null's true value is the bias, subtracted from F(k) (never going below the
  independent value), and errors count as concentrated ("heterogeneity_significant") only
  when the observed F(k) exceeds the null's 95th percentile (so independent errors raise a
  false alarm about 5% of the time). The interval of p_full comes from resampling steps and
  covers step-sampling noise only. The null's bias is smaller than the bias among truly hard
  steps, so with strongly concentrated errors the estimate stays pessimistic.
- A bound without small-sample bias: e_i^k <= 1 - P_i(k), and mean_i C(w_i, k) / C(m_i, k)
  (m_i = c_i + w_i) is unbiased for mean e_i^k, so `failure_at_least` and `p_full_at_most` bound
  the truth from the other side, for k up to the votes per step (null beyond).
- A few hundred steps cannot resolve failures near 1/s for s = 10^6: the estimates say what
  the calibration shows, the formula what independence would promise.
"""
from __future__ import annotations

from typing import Any

import numpy as np

Z95 = 1.959963984540054
_BOOT = 200  # bootstrap replications: enough for a 95th percentile, cheap in numpy


def wilson(k: Any, n: Any, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of k successes in n trials (elementwise; n = 0 gives 0..1)."""
    k, n0 = np.asarray(k, float), np.asarray(n, float)
    empty = n0 < 1
    n = np.where(empty, 1.0, n0)  # placeholder; empty cells answer 0..1 below
    p, z2 = np.where(empty, 0.0, k / n), z * z
    mid, half = (p + z2 / (2 * n)), z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (np.where(empty, 0.0, (mid - half) / (1 + z2 / n)),
            np.where(empty, 1.0, (mid + half) / (1 + z2 / n)))


def rate(k: float, n: float) -> dict[str, float]:
    """k of n as {rate, low, high} (95% Wilson)."""
    lo, hi = wilson(k, n)
    return {"rate": k / n if n else 0.0, "low": float(lo), "high": float(hi)}


def summary(values: np.ndarray, quantiles: tuple[int, ...] = (50, 90, 99), digits: int = 3
            ) -> dict[str, float]:
    """mean (rounded to `digits`), the percentiles p50, p90, ... and max of `values` (zeros
    when empty)."""
    keys = [f"p{q:02d}" if q < 10 else f"p{q}" for q in quantiles]
    if values.size == 0:
        return {"mean": 0.0, **dict.fromkeys(keys, 0.0), "max": 0.0}
    qs = np.percentile(values, list(quantiles))
    return {"mean": round(float(values.mean()), digits),
            **{k: float(v) for k, v in zip(keys, qs)}, "max": float(values.max())}


def length_bins(lengths: np.ndarray, wrong: np.ndarray, bins: int = 10) -> list[dict]:
    """Error rate by output length (the paper's Figure 9a): quantile bins, so each bin holds
    about the same number of samples; [{lo, hi, n, error, low, high}] with Wilson bounds."""
    out: list[dict] = []
    if lengths.size == 0:
        return out
    edges = np.unique(np.percentile(lengths, np.linspace(0, 100, bins + 1)))
    which = np.clip(np.searchsorted(edges, lengths, side="right") - 1, 0,
                    max(0, len(edges) - 2))
    for b in np.unique(which):
        sel = which == b
        n, e = int(sel.sum()), int(wrong[sel].sum())
        lo, hi = wilson(e, n)
        out.append({"lo": float(lengths[sel].min()), "hi": float(lengths[sel].max()), "n": n,
                    "error": e / n, "low": float(lo), "high": float(hi)})
    return out


def _failure(c: np.ndarray, w: np.ndarray, q: float, ks: np.ndarray) -> np.ndarray:
    """Per-step plug-in failure 1 - P_i(k) (shrunk gambler's ruin); shape (..., steps, len(ks))."""
    qi = (c + q) / (c + w + 1.0)
    r = ((1 - qi) / qi)[..., None] ** ks
    return r / (1 + r)


def heterogeneity(c: np.ndarray, w: np.ndarray, s: int, target: float, k_eval: int | None,
                  seed: int = 0) -> dict[str, Any]:
    """The `success` block: heterogeneity-aware run success vs the independent formula."""
    m = c + w
    # clipped so both the steps' and the null's odds stay finite
    q = min(max(float(c.sum() / m.sum()) if m.sum() else 1.0, 1e-12), 1 - 1e-12)
    kmax = int(min(60, max(20, 2 * (k_eval or 10))))
    ks = np.arange(1, kmax + 1)
    f_steps = _failure(c, w, q, ks)  # (steps, K)
    f_obs = f_steps.mean(axis=0)
    rng = np.random.default_rng(seed)
    # null: the same design with independent errors at the pooled two-player rate
    # (one replication at a time: memory stays steps x K however many steps were sampled)
    f_null = np.empty((_BOOT, ks.size))
    for b in range(_BOOT):
        wn = rng.binomial(m, 1 - q)
        f_null[b] = _failure(m - wn, wn, q, ks).mean(axis=0)
    r_true = ((1 - q) / q) ** ks
    f_indep = r_true / (1 + r_true)
    bias = f_null.mean(axis=0) - f_indep
    f_het = np.maximum(f_indep, f_obs - bias)
    # interval: resample steps, apply the same correction
    f_boot = np.array([f_steps[rng.integers(0, c.size, c.size)].mean(axis=0)
                       for _ in range(_BOOT)])
    f_boot = np.maximum(f_indep, f_boot - bias)
    log_full = s * np.log1p(-np.minimum(f_het, 1 - 1e-300))
    full = np.exp(log_full)
    full_lo, full_hi = (np.exp(s * np.log1p(-np.minimum(np.percentile(f_boot, p, axis=0),
                                                        1 - 1e-300))) for p in (97.5, 2.5))
    k_het = next((int(k) for k, f in zip(ks, full) if f >= target), None)
    # unbiased estimate of E[e_i^k] (e_i: top-wrong share of the two-player race): the chance
    # that k of a step's votes drawn without replacement are all its top wrong answer. Since
    # e^k <= 1 - P(k), it bounds the failure from below with no small-sample bias (k <= votes).
    ratio, at_least = np.ones(m.size), []
    for k in ks:
        ratio = ratio * np.maximum(w - (k - 1), 0) / np.maximum(m - (k - 1), 1)
        enough = m >= k
        at_least.append(float(ratio[enough].mean()) if enough.any() else None)
    out: dict[str, Any] = {"s": s, "k_max": kmax, "k_min_heterogeneous": k_het,
                           "two_player_q": q, "by_k": []}
    for i, k in enumerate(ks):
        out["by_k"].append({"k": int(k), "failure_observed": float(f_obs[i]),
                            "failure_null_mean": float(f_null[:, i].mean()),
                            "failure_null_p95": float(np.percentile(f_null[:, i], 95)),
                            "p_step_heterogeneous": float(1 - f_het[i]),
                            "p_full_heterogeneous": float(full[i]),
                            "p_full_heterogeneous_low": float(full_lo[i]),
                            "p_full_heterogeneous_high": float(full_hi[i]),
                            "failure_at_least": at_least[i],
                            "p_full_at_most": None if at_least[i] is None else
                            float(np.exp(s * np.log1p(-min(at_least[i], 1 - 1e-300))))})
    return out
