"""The calibration from its observations: pure arithmetic (statistics from
`maker_local.core.stats`).

Why more than the mean: the bundled step model (its card) was seen to repeat the *same*
wrong answer on a few steps. Voting cannot fix a step whose wrong answer is as likely as the
right one, and the paper's `p_full = p_step(p, k)^s` assumes every step has the same p. So
the calibration holds the per-step p_i and tests whether errors concentrate on some steps
beyond sampling noise (`maker_local.core.stats.heterogeneity` explains the estimate).

JSON keys (file `calibration.json`, `version` 1):
  version, created, backend (its describe()), config {task, sizes, steps_per_size, samples,
  temperature, max_tokens, constrained, seed, style}
  samples {total, errors (backend failures, excluded), valid, flagged_by_reason}
  p, p_low, p_high       per-sample accuracy among valid samples (flag parser), 95% Wilson;
                         where rho's interval lies above 0, over the votes' effective number
                         (`p_interval` says how: a step's votes share its error rate)
  valid, valid_low, valid_high  share of samples that pass the red flags (v)
  repair                 {p, p_low, p_high, valid} with the repairing parser (unconstrained
                         runs only, else null): the paper's calibration parser
  tokens_out_mean, tokens_in_mean, tokens_reasoning_mean  per sample (what `plan` prices)
  tokens {out, out_valid, in, reasoning: {mean, p50, p90, p99, max}}
  cap                    recommended red-flag --max-tokens: p99 of valid output tokens,
                         rounded up to a multiple of 50; cap_cuts: share of valid samples above it
  error_by_length        [{lo, hi, n, error, low, high}] error among valid samples per
                         output-length bin (the paper's Figure 9a)
  by_size                [{size, label, steps, samples, valid, p, p_low, p_high}] (Figure 6a:
                         p by the task's size)
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
  k                      the recommendation: THE rule (`maker_local.voting.krule.choose_k`)
                         over this file's planning distribution (the fitted beta and hopeless
                         steps, the error at the end of p's interval); null: no k reaches
                         the target (k_rule says why and what to do)
  k_rule                 {k, steps, target, expected_wrong, p_full, floor, share_hopeless,
                         why (null, "hopeless", "k_max"), where, line}: what the rule said
  correlation            `maker_local.voting.correlation.measure` over every step's valid samples:
                         {basis, steps, votes, k, run_steps, error, rho, rho_low, rho_high,
                         estimator, collisions {steps, count, rate, low, high, independent,
                         ratio}, hopeless {count, steps, share, low, high, at_most}, fit
                         {error, rho, hopeless, hopeless_p, share_hopeless}, expected_wrong
                         {k, steps, independent, fitted, high, p_full_fitted, k_min_fitted},
                         verdict}: within-step correlation, steps with p_i <= 0.5 and the
                         wrong decisions a run of run_steps at k (the recommendation, else 3)
                         should expect
  run_steps, target, warnings [..], plots [PNG file names beside the JSON: <stem>_
                         error_vs_length, _p_by_size, _p_i_hist], per_step [[size, step,
                         samples, valid, right, top_wrong], ...]
"""
from __future__ import annotations

import math
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from ..voting.correlation import measure as correlation
from ..voting.correlation import p_interval
from ..core.stats import heterogeneity, length_bins, rate, summary, wilson
from ..voting.krule import choose_k, planning_distribution
from ..voting.scaling import k_min as scaling_k_min
from ..voting.scaling import p_full as scaling_p_full
from ..voting.scaling import p_step as scaling_p_step
from ..tasks.base import REASONS
from .files import VERSION

if TYPE_CHECKING:
    from .measure import CalibrationConfig, Observation, Observations


def estimate(obs: Observations, cfg: CalibrationConfig, backend_info: dict[str, Any]
             ) -> dict[str, Any]:
    """Everything in the JSON file, from the collected samples alone."""
    if not obs.rows:
        raise ValueError("no samples came back (every request failed?): check the backend")
    rows = obs.rows
    sizes = np.array([o.size for o in rows])
    steps = np.array([o.step for o in rows])
    valid = np.array([o.key is not None for o in rows])
    ok = np.array([o.correct for o in rows], bool)
    tin, tout, trea = (np.array([getattr(o, f) for o in rows], float)
                       for f in ("tokens_in", "tokens_out", "tokens_reasoning"))
    flags = [o.flag for o in rows]
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
        "config": {"task": cfg.tasks[0].name, "size_label": cfg.tasks[0].size_label,
                   "sizes": [t.size for t in cfg.tasks], "steps_per_size": cfg.steps_per_size,
                   "samples": cfg.samples, "temperature": cfg.temperature,
                   "max_tokens": cfg.max_tokens, "constrained": cfg.constrained,
                   "seed": cfg.seed, "style": getattr(cfg.tasks[0], "style", None)},
        "run_steps": cfg.run_steps, "target": cfg.target,
        "samples": {"total": n + obs.errors, "errors": obs.errors, "valid": nv,
                    "flagged_by_reason": {r: sum(f == r for f in flags) for r in REASONS}},
        "p": p, "p_low": float(p_lo), "p_high": float(p_hi),
        "valid": nv / n, "valid_low": float(v_lo), "valid_high": float(v_hi), "repair": None,
        "tokens_out_mean": float(tout.mean()), "tokens_in_mean": float(tin.mean()),
        "tokens_reasoning_mean": float(trea.mean()),
        "tokens": {"out": summary(tout), "out_valid": summary(tout[valid]), "in": summary(tin),
                   "reasoning": summary(trea)},
    }
    if not cfg.constrained:
        rn = sum(o.repaired_key is not None for o in rows)
        rr = sum(bool(o.repaired_correct) for o in rows)
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
    res["by_size"] = []
    for t in cfg.tasks:
        d = t.size
        sel = sizes == d
        dv, dr = int(valid[sel].sum()), int(ok[sel].sum())
        lo, hi = wilson(dr, dv)
        res["by_size"].append({"size": d, "label": t.label(), "steps": len(set(steps[sel].tolist())),
                                "samples": int(sel.sum()), "valid": dv / max(1, int(sel.sum())),
                                "p": dr / dv if dv else None, "p_low": float(lo),
                                "p_high": float(hi)})
    info, c, w, nval, collided = _per_step(obs, p, cfg.run_steps)
    res.update(info)
    res.update(_success(c, w, p, res["p_low"], cfg, warnings))
    basis = f"every valid sample of {c.size} steps x {cfg.samples} samples"
    res["correlation"] = correlation(c, nval, collided, steps=cfg.run_steps, k=3,
                                     seed=cfg.seed, basis=basis)
    # p's interval counts a step's votes as one cluster (the design effect of their rho)
    rho_all, rho_low = res["correlation"]["rho"], res["correlation"]["rho_low"]
    if rho_all is not None and rho_low is not None and rho_low > 0:
        res["p_low"], res["p_high"] = p_interval(nr, nv, nv / max(c.size, 1), rho_all)
        res["p_interval"] = (f"Wilson over {nv:,} votes counted as {c.size:,} steps' "
                             f"clusters (design effect 1 + (votes per step - 1) x rho "
                             f"{rho_all:.3g})")
    # THE rule for k (engine.krule), over the distribution this file plans with: the
    # recommendation is what solve --k auto, bench and plan --calibration will pick
    rule = choose_k(planning_distribution(res), cfg.run_steps, cfg.target,
                    where="this calibration's per-step distribution")
    res["k"], res["k_rule"] = rule.k, rule.as_dict()
    # the block's run errors at the recommended k (without one: at the k the independent
    # formula would pick, to show what it would cost)
    shown = rule.k or res["k_min_conservative"] or 3
    if shown != 3:
        res["correlation"] = correlation(c, nval, collided, steps=cfg.run_steps, k=shown,
                                         seed=cfg.seed, basis=basis)
    res["warnings"] = warnings
    return res


def _per_step(obs: Observations, p: float, s: int
              ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-step p_i, margins, bad steps and collisions; also each step's right votes, top
    wrong votes, valid votes and collision (1/0; -1 with fewer than two valid votes)."""
    by_step: dict[tuple[int, int], list[Observation]] = {}
    for o in obs.rows:
        by_step.setdefault((o.size, o.step), []).append(o)
    table, collided, coll_n, coll = [], [], 0, 0
    for (d, step), rows in sorted(by_step.items()):
        rows.sort(key=lambda o: o.index)
        votes = [(o.key, o.correct) for o in rows if o.key is not None]
        right = sum(1 for _, c in votes if c)
        wrong = Counter(k for k, c in votes if not c)
        top = max(wrong.values(), default=0)
        table.append([d, step, len(rows), len(votes), right, top])
        collided.append(-1)
        if len(votes) >= 2:
            coll_n += 1
            collided[-1] = int(not votes[0][1] and not votes[1][1])
            coll += collided[-1]
    t = np.array(table, dtype=np.int64).reshape(-1, 6)
    has_vote = t[:, 3] > 0
    t = t[has_vote]  # steps with at least one valid vote
    collided_a = np.array(collided, dtype=np.int64)[has_vote]
    nval, c, w = t[:, 3], t[:, 4], t[:, 5]
    pi = c / np.maximum(nval, 1)
    margin = c - w
    bad = int(((w >= c) & (w > 0)).sum())
    out: dict[str, Any] = {"per_step": table}
    out["collisions"] = {"steps": coll_n, "count": coll, **rate(coll, coll_n),
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
    out["bad_steps"] = {"count": bad, "steps": int(pi.size), **rate(bad, pi.size),
                        "needed_below": 1 / s}
    out["bad_steps"]["share"] = out["bad_steps"].pop("rate")
    return out, c, w, nval, collided_a


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
    p_full_f = scaling_p_full(p, k_eval, s) if p > 0.5 else 0.0
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
    return {
        "success": {"s": s, "k": k_eval, "p_step_formula": p_step_f,
                    "p_full_formula": p_full_f,
                    **{key: v for key, v in row.items() if key != "k"},
                    "heterogeneity_significant": bool(significant), "too_optimistic": too_opt,
                    "verdict": verdict, "two_player_q": het["two_player_q"],
                    "by_k": het["by_k"]},
        "k_min": km, "k_min_conservative": kc, "k_min_heterogeneous": k_het,
    }
