"""Calibration: measure a model's per-step accuracy on random steps and recommend k and a cap.

Boundary: `collect` is the only I/O (backend calls); `estimate` is pure arithmetic on the
collected samples; `write` saves the JSON (the command draws the plots). Steps are drawn at
random across disk counts, their inputs built in closed form (`task.input_at`), and each step
is asked for R samples exactly as a solve would ask (same prompt, constraint, seeds from
`sample_seed`).

Why more than the mean: the bundled step model (its card) was seen to repeat the *same*
wrong answer on a few steps. Voting cannot fix a step whose wrong answer is as likely as the right one, and the
paper's `p_full = p_step(p, k)^s` assumes every step has the same p. So this module measures
the per-step p_i and tests whether errors concentrate on some steps beyond sampling noise.

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

JSON keys (file `calibration.json`, `version` 1):
  version, created, backend (its describe()), config {disks, steps_per_disk, samples,
  temperature, max_tokens, constrained, seed, style}
  samples {total, errors (backend failures, excluded), valid, flagged_by_reason}
  p, p_low, p_high       per-sample accuracy among valid samples (flag parser), 95% Wilson
  valid, valid_low, valid_high  share of samples that pass the red flags (v)
  repair                 {p, p_low, p_high, valid} with the repairing parser (unconstrained
                         runs only, else null): the paper's calibration parser
  tokens_out_mean, tokens_in_mean, tokens_reasoning_mean  per sample (what `plan` prices)
  tokens {out, out_valid, in, reasoning: {mean, p50, p90, p99, max}}
  cap                    recommended red-flag --max-tokens: p99 of valid output tokens,
                         rounded up to a multiple of 50; cap_cuts: share of valid samples above it
  error_by_length        [{lo, hi, n, error, low, high}] error among valid samples per
                         output-length bin (the paper's Figure 9a)
  by_disks               [{disks, steps, samples, valid, p, p_low, p_high}] (Figure 6a)
  collisions             {steps, count, rate, low, high, independent}: both of the first two
                         valid samples of a step wrong; `independent` = (1 - p)^2
  per_step_p             {steps, mean, min, p01, p10, p50, share_below_1, hist {edges, counts}}
  margin                 {mean, min, p01, p10, p50, share_le_0}: right count minus top wrong
  bad_steps              {count, steps, share, low, high, needed_below}: steps whose top wrong
                         answer got at least as many votes as the right one; a zero-error run
                         of s steps needs the true share below ~1/s (needed_below)
  success                {s, k, p_step_formula, p_full_formula, p_step_heterogeneous,
                         p_full_heterogeneous, p_full_heterogeneous_low/high,
                         failure_observed, failure_null_mean, failure_null_p95,
                         failure_at_least, p_full_at_most,
                         heterogeneity_significant, too_optimistic, verdict (one plain
                         sentence), two_player_q (pooled q), by_k [the same per k]}
  k_min                  k_min(p, s, target) of the scaling law (null if p <= 0.5)
  k_min_conservative     k_min at p_low; k_min_heterogeneous: smallest k whose heterogeneous
                         p_full reaches the target (null if none up to k_max)
  k                      the recommendation: k_min_conservative, or k_min_heterogeneous when
                         errors concentrate and it is larger (null when p <= 0.5)
  run_steps, target, warnings [..], plots [PNG file names beside the JSON: <stem>_
                         error_vs_length, _p_by_disks, _p_i_hist], per_step [[disks, step,
                         samples, valid, right, top_wrong], ...]
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .engine.redflags import classify
from .engine.scaling import k_min as scaling_k_min
from .engine.scaling import p_step as scaling_p_step
from .engine.seeds import MAX_RUN_SEED, sample_seed
from .tasks.base import REASONS, Parsed
from .tasks.hanoi import MAX_DISKS, Hanoi
from .types import SampleRequest

VERSION = 1
Z95 = 1.959963984540054
REQUIRED = ("p", "valid", "tokens_out_mean", "tokens_in_mean")
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


def parse_disks(spec: str) -> list[int]:
    """'3-20', '4,10,20' or '3-6,10' -> sorted disk counts; ValueError says what is wrong."""
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in str(spec).split(","))):
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"--disks takes counts like 3-20 or 4,10,20 (got {spec!r})") from None
        if not 1 <= a <= b <= MAX_DISKS:
            raise ValueError(f"--disks must lie in 1..{MAX_DISKS} (got {part!r})")
        out.update(range(a, b + 1))
    if not out:
        raise ValueError("--disks is empty")
    return sorted(out)


@dataclass
class CalibrationConfig:
    disks: list[int]
    steps_per_disk: int = 100
    samples: int = 10
    temperature: float = 0.1
    max_tokens: int = 4096  # generous: calibration measures the length tail, it does not cut it
    constrained: bool = True
    seed: int = 0
    target: float = 0.95
    run_steps: int = 2**20 - 1
    style: str = "paper"  # the task's prompt/answer style (tasks.hanoi.STYLES)

    def check(self) -> None:
        if self.steps_per_disk < 1 or self.samples < 2:
            raise ValueError("--steps-per-disk must be >= 1 and --samples >= 2 (per-step "
                             "statistics need at least two samples of a step)")
        if not 0 <= self.seed <= MAX_RUN_SEED >> 5:
            raise ValueError(f"--seed must be in 0..{MAX_RUN_SEED >> 5}")
        if not 0 < self.target < 1 or self.run_steps < 1 or self.max_tokens < 1:
            raise ValueError("--target must be in (0, 1); --run-steps, --max-tokens >= 1")


@dataclass
class Observations:
    """Per sample: (disks, step, index, key or None, correct, flag, tok in/out/reasoning,
    repaired key, repaired correct); backend failures are only counted."""

    rows: list[tuple] = field(default_factory=list)
    errors: int = 0


def _run_seed(seed: int, disks: int) -> int:
    # step numbers repeat across disk counts; mixing the disk count in keeps seeds distinct
    return (seed << 5) | disks


def collect(cfg: CalibrationConfig, backend: Any, chunk: int = 256) -> Observations:
    """Sample cfg.samples answers of random steps at each disk count through `backend`.

    One backend serves all disk counts, so it must read each request's own prompt/input.
    """
    cfg.check()
    rng = np.random.default_rng(cfg.seed)
    obs = Observations()
    for d in cfg.disks:
        task = Hanoi(d, style=cfg.style)
        total = task.num_steps()
        steps = (np.arange(total) if total <= cfg.steps_per_disk
                 else np.sort(rng.choice(total, cfg.steps_per_disk, replace=False)))
        reqs = []
        for step in steps.tolist():
            x = task.input_at(step)
            reqs.append(SampleRequest(step, x, task.render(x), cfg.samples, cfg.temperature,
                                      cfg.max_tokens, sample_seed(_run_seed(cfg.seed, d), step, 0),
                                      task.constraint(x) if cfg.constrained else None, 0))
        for i in range(0, len(reqs), chunk):
            batch = reqs[i:i + chunk]
            for req, samples in zip(batch, backend.sample(batch)):
                ref = task.reference(req.x)
                for j, s in enumerate(samples):
                    if s.finish_reason == "error":
                        obs.errors += 1
                        continue
                    got = classify(s, task, req.x)
                    key = got.key if isinstance(got, Parsed) else None
                    rkey = key
                    if not cfg.constrained and key is None and s.finish_reason == "stop":
                        rep = classify(s, task, req.x, repair=True)
                        rkey = rep.key if isinstance(rep, Parsed) else None
                    obs.rows.append((d, req.step, j, key, key is not None and key == ref.key,
                                     None if key else got.reason, s.tokens_in, s.tokens_out,
                                     s.tokens_reasoning, rkey,
                                     rkey is not None and rkey == ref.key))
    return obs


def _dist(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    q = np.percentile(values, [50, 90, 99])
    return {"mean": round(float(values.mean()), 3), "p50": float(q[0]), "p90": float(q[1]),
            "p99": float(q[2]), "max": float(values.max())}


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


def _rate(k: float, n: float) -> dict[str, float]:
    lo, hi = wilson(k, n)
    return {"rate": k / n if n else 0.0, "low": float(lo), "high": float(hi)}


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


def estimate(obs: Observations, cfg: CalibrationConfig, backend_info: dict[str, Any]
             ) -> dict[str, Any]:
    """Everything in the JSON file, from the collected samples alone."""
    if not obs.rows:
        raise ValueError("no samples came back (every request failed?): check the backend")
    d_, st_, ix_, key_, ok_, flag_, tin, tout, trea, rkey_, rok_ = zip(*obs.rows)
    disks, steps = np.array(d_), np.array(st_)
    valid = np.array([k is not None for k in key_])
    ok = np.array(ok_, bool)
    tin, tout, trea = (np.array(a, float) for a in (tin, tout, trea))
    n, nv, nr = len(obs.rows), int(valid.sum()), int(ok.sum())
    p_lo, p_hi = wilson(nr, nv)
    v_lo, v_hi = wilson(nv, n)
    if nv == 0:
        raise ValueError("every sample was red-flagged, so there is nothing to measure: look "
                         "at the flag reasons in a solve's ledger, raise --max-tokens, or try "
                         "--unconstrained / a constrained backend")
    p = nr / nv
    warnings: list[str] = []
    if cfg.temperature == 0:
        warnings.append("temperature 0: a step's samples agree by construction, so per-step "
                        "statistics (p_i, margins, bad steps) say little; use temperature > 0")
    res: dict[str, Any] = {
        "version": VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": backend_info,
        "config": {"disks": cfg.disks, "steps_per_disk": cfg.steps_per_disk,
                   "samples": cfg.samples, "temperature": cfg.temperature,
                   "max_tokens": cfg.max_tokens, "constrained": cfg.constrained,
                   "seed": cfg.seed, "style": cfg.style},
        "run_steps": cfg.run_steps, "target": cfg.target,
        "samples": {"total": n + obs.errors, "errors": obs.errors, "valid": nv,
                    "flagged_by_reason": {r: sum(f == r for f in flag_) for r in REASONS}},
        "p": p, "p_low": float(p_lo), "p_high": float(p_hi),
        "valid": nv / n, "valid_low": float(v_lo), "valid_high": float(v_hi), "repair": None,
        "tokens_out_mean": float(tout.mean()), "tokens_in_mean": float(tin.mean()),
        "tokens_reasoning_mean": float(trea.mean()),
        "tokens": {"out": _dist(tout), "out_valid": _dist(tout[valid]), "in": _dist(tin),
                   "reasoning": _dist(trea)},
    }
    if not cfg.constrained:
        rv = np.array([k is not None for k in rkey_])
        rn, rr = int(rv.sum()), int(np.sum(rok_))
        lo, hi = wilson(rr, rn)
        res["repair"] = {"p": rr / rn if rn else 0.0, "p_low": float(lo), "p_high": float(hi),
                         "valid": rn / n}
    # the cap: p99 of valid lengths, rounded up; warn when the calibration cap itself bit
    cap = int(math.ceil(max(1.0, res["tokens"]["out_valid"]["p99"]) / 50) * 50)
    res["cap"], res["cap_cuts"] = cap, float((tout[valid] > cap).mean()) if nv else 0.0
    if res["samples"]["flagged_by_reason"]["length"] > 0.01 * n:
        warnings.append(f"{res['samples']['flagged_by_reason']['length']} samples hit the "
                        f"calibration cap {cfg.max_tokens}: raise --max-tokens to see the tail")
    res["error_by_length"] = length_bins(tout[valid], ~ok[valid])
    res["by_disks"] = []
    for d in cfg.disks:
        sel = disks == d
        dv, dr = int(valid[sel].sum()), int(ok[sel].sum())
        lo, hi = wilson(dr, dv)
        res["by_disks"].append({"disks": d, "steps": len(set(steps[sel].tolist())),
                                "samples": int(sel.sum()), "valid": dv / max(1, int(sel.sum())),
                                "p": dr / dv if dv else None, "p_low": float(lo),
                                "p_high": float(hi)})
    info, c, w = _per_step(obs, p, cfg.run_steps)
    res.update(info)
    res.update(_success(c, w, p, res["p_low"], cfg, warnings))
    res["warnings"] = warnings
    return res


def _per_step(obs: Observations, p: float, s: int) -> tuple[dict[str, Any], np.ndarray,
                                                            np.ndarray]:
    """Per-step p_i, margins, bad steps and collisions; also each step's (right, top wrong)."""
    by_step: dict[tuple[int, int], list[tuple]] = {}
    for r in obs.rows:
        by_step.setdefault((r[0], r[1]), []).append(r)
    table, coll_n, coll = [], 0, 0
    for (d, step), rows in sorted(by_step.items()):
        rows.sort(key=lambda r: r[2])
        votes = [(r[3], r[4]) for r in rows if r[3] is not None]
        right = sum(1 for _, c in votes if c)
        wrong = Counter(k for k, c in votes if not c)
        top = max(wrong.values(), default=0)
        table.append([d, step, len(rows), len(votes), right, top])
        if len(votes) >= 2:
            coll_n += 1
            coll += int(not votes[0][1] and not votes[1][1])
    t = np.array(table, dtype=np.int64).reshape(-1, 6)
    t = t[t[:, 3] > 0]  # steps with at least one valid vote
    nval, c, w = t[:, 3], t[:, 4], t[:, 5]
    pi = c / np.maximum(nval, 1)
    margin = c - w
    bad = int(((w >= c) & (w > 0)).sum())
    out: dict[str, Any] = {"per_step": table}
    out["collisions"] = {"steps": coll_n, "count": coll, **_rate(coll, coll_n),
                         "independent": (1 - p) ** 2}
    hist_counts, hist_edges = np.histogram(pi, bins=np.linspace(0, 1, 21))
    qs = np.percentile(pi, [1, 10, 50]) if pi.size else [0, 0, 0]
    out["per_step_p"] = {"steps": int(pi.size), "mean": float(pi.mean()) if pi.size else 0.0,
                         "min": float(pi.min()) if pi.size else 0.0, "p01": float(qs[0]),
                         "p10": float(qs[1]), "p50": float(qs[2]),
                         "share_below_1": float((pi < 1).mean()) if pi.size else 0.0,
                         "hist": {"edges": hist_edges.round(3).tolist(),
                                  "counts": hist_counts.tolist()}}
    mq = np.percentile(margin, [1, 10, 50]) if margin.size else [0, 0, 0]
    out["margin"] = {"mean": float(margin.mean()) if margin.size else 0.0,
                     "min": int(margin.min()) if margin.size else 0, "p01": float(mq[0]),
                     "p10": float(mq[1]), "p50": float(mq[2]),
                     "share_le_0": float((margin <= 0).mean()) if margin.size else 0.0}
    out["bad_steps"] = {"count": bad, "steps": int(pi.size), **_rate(bad, pi.size),
                        "needed_below": 1 / s}
    out["bad_steps"]["share"] = out["bad_steps"].pop("rate")
    return out, c, w


def _success(c: np.ndarray, w: np.ndarray, p: float, p_low: float, cfg: CalibrationConfig,
             warnings: list[str]) -> dict[str, Any]:
    """The `success` block and the k recommendation."""
    s, t = cfg.run_steps, cfg.target
    km = scaling_k_min(p, s, t) if p > 0.5 else None
    kc = scaling_k_min(p_low, s, t) if p_low > 0.5 else None
    het = heterogeneity(c, w, s, t, km, cfg.seed)
    k_eval = min(km or het["k_max"], het["k_max"])
    row = het["by_k"][k_eval - 1]
    p_step_f = scaling_p_step(p, k_eval) if p > 0.5 else None
    p_full_f = math.exp(s * math.log(p_step_f)) if p_step_f else 0.0
    significant = row["failure_observed"] > row["failure_null_p95"]
    too_opt = bool(significant and row["p_full_heterogeneous"] < p_full_f)
    if p <= 0.5:
        verdict = (f"Voting cannot fix this model: among valid samples the right answer has "
                   f"p = {p:.3f} <= 0.5, so no k reaches the target.")
    elif too_opt:
        verdict = (f"The independent-error formula is too optimistic: errors concentrate on "
                   f"some steps (per-step failure at k={k_eval}: "
                   f"{1 - row['p_step_heterogeneous']:.2g} measured, {1 - p_step_f:.2g} by the "
                   f"formula), so P(all {s:,} steps right) is about "
                   f"{row['p_full_heterogeneous']:.3g}"
                   + (f" (at most {row['p_full_at_most']:.3g})"
                      if row["p_full_at_most"] is not None else "")
                   + f", not {p_full_f:.3g}.")
    elif significant:
        verdict = ("Errors concentrate on some steps more than independent errors would, "
                   "but not enough to lower the run's success odds at this k.")
    else:
        verdict = (f"No sign of errors concentrating on some steps beyond sampling noise at "
                   f"this size ({c.size} steps x {cfg.samples} samples); the formula assumes "
                   f"independent errors, which a calibration this small cannot confirm for "
                   f"failures rarer than about 1/{c.size * cfg.samples}.")
    if p <= 0.5:
        warnings.append(f"p = {p:.3f} <= 0.5: voting cannot fix this model (no k_min)")
    k_het = het["k_min_heterogeneous"]
    # the larger of the conservative k and, when errors concentrate, the heterogeneous one
    k = max([x for x in (kc, k_het if significant else None) if x is not None], default=None)
    if significant:
        if k_het is None:
            warnings.append(f"no k up to {het['k_max']} reaches the target under the measured "
                            "error concentration: improve the model on its hard steps "
                            "(hard-example training, a second model) before a long run")
    return {
        "success": {"s": s, "k": k_eval, "p_step_formula": p_step_f,
                    "p_full_formula": p_full_f,
                    **{key: v for key, v in row.items() if key != "k"},
                    "heterogeneity_significant": bool(significant), "too_optimistic": too_opt,
                    "verdict": verdict, "two_player_q": het["two_player_q"],
                    "by_k": het["by_k"]},
        "k_min": km, "k_min_conservative": kc, "k_min_heterogeneous": k_het, "k": k,
    }


def calibrate(cfg: CalibrationConfig, backend: Any) -> dict[str, Any]:
    """Collect and estimate (no files written)."""
    info = backend.describe() if hasattr(backend, "describe") else {"backend": backend.name}
    return estimate(collect(cfg, backend), cfg, info)


# ----------------------------------------------------------------------------- files

def write(result: dict[str, Any], out: Path) -> Path:
    """Save the result as JSON (the command adds its plots beside it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return out


def load_calibration(path: Path | str) -> dict[str, Any]:
    """A calibration file for `solve --k auto` and `plan`; ValueError says what to fix."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"cannot read calibration {path}: {e.strerror}; run maker-local "
                         "calibrate first (it writes runs/calibration/calibration.json)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not a calibration file (invalid JSON: {e})") from None
    missing = [k for k in REQUIRED if not isinstance(data, dict)
               or not isinstance(data.get(k), (int, float))]
    if missing:
        raise ValueError(f"{path} is not a maker-local calibration (missing {missing}); "
                         "write one with maker-local calibrate")
    if data.get("version", VERSION) > VERSION:
        raise ValueError(f"{path} was written by a newer maker-local; upgrade to read it")
    return data
