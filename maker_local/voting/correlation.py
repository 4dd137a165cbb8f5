"""Correlated errors: how far a model's votes are from erring independently, and what that
costs a run. Pure arithmetic (numpy): counts in, numbers out; nothing here reads a file, a
ledger or a backend. Calibration, bench and report feed it per-step vote counts; `plan` and
the sim use its distribution of per-step accuracy.

The model. Step i has its own error rate q_i = 1 - p_i; a step's votes are independent given
q_i, so the correlation between two votes of one step is the intraclass correlation
rho = Var(q) / (e (1 - e)), e = E[q]. rho = 0 is the paper's world (every step errs at e);
rho near 1 means each step is either always right or always wrong. Steps are a beta with
mean e and ICC rho (a = e (1/rho - 1), b = (1 - e)(1/rho - 1)), plus optionally a share of
*hopeless* steps (p_i <= 0.5: voting converges on the wrong answer there).

Estimators (`measure`), from per-step counts (w_i wrong of n_i valid votes):
- error e^ = mean_i w_i / n_i (each step weighs the same: steps, not votes, are the units).
- rho^: the pairwise (beta-binomial moment) estimator. mean_i w_i (w_i - 1) / (n_i (n_i - 1))
  is unbiased for E[q^2] (the chance that two distinct votes of a step both err), so
  rho^ = (E^[q^2] - E^[q]^2) / (e^ (1 - e^)), with E[q]^2 estimated without bias as
  e^2 - s^2/S (s^2: sample variance of w_i/n_i over S steps). It can come out below 0
  (underdispersion, or noise); the fit clips it to 0. 95% interval: Poisson bootstrap over
  steps (cheap when most steps have no error). Needs n_i >= 2.
- collisions: both of a step's first two votes wrong, against e^2, what independent errors
  predict; their ratio is the collision excess (1 + rho (1 - e) / e for the beta).
- hopeless share: steps whose observed right share p^_i <= 0.5, with a 95% Wilson interval
  over steps, and `at_most` = min(1, 2 x its upper end): a step with p_i <= 0.5 shows
  p^_i <= 0.5 with probability >= 1/2 however few its votes (the median of Bin(n, p <= 1/2)
  is at most n/2), so the true share is at most twice what is seen.
- expected wrong decisions of a run of N steps at k: N x E[P(wrong | p, k)] with
  P(wrong | p, k) = (1-p)^k / (p^k + (1-p)^k) (first-to-ahead-by-k, all wrong votes for one
  answer: the worst case), over the fitted distribution: the hopeless steps at their mean p^_i,
  the others a beta fitted by these moments. `high` puts the hopeless share at its `at_most`
  (each such step wrong at least half the time) and rho at its upper end.

Where the counts come from: calibrate has a fixed number of samples per step (all of them
count). A run stops voting a step as soon as it is decided, so its later votes exist only
because the first ones disagreed (all of them together read the error ~40% low at k=3):
bench (`from_run`, votes in memory) uses each step's first k votes, which every decided step
has; report (`from_decisions`, no pass over every vote) fits the beta to two shares with no
such bias, P(first k votes all right) = E[(1-q)^k] and P(first two both wrong) = E[q^2], and
reads p_i <= 0.5 from the steps decided wrong.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..core.stats import wilson
from .krule import choose_k
from .steperrors import StepErrors, p_wrong

_BOOT = 200


# ------------------------------------------------------------------------- estimators
def counts(sequences: Iterable[Sequence[bool]], first: int | None = None
           ) -> dict[str, np.ndarray]:
    """Per-step arrays from each step's valid votes in order (True = right): right, votes,
    and collided (both of the first two wrong; -1 with fewer than two votes); `first`:
    count only each step's first votes (all of them when None)."""
    right, votes, collided = [], [], []
    for seq in sequences:
        every = list(seq)
        s = every if first is None else every[:first]
        right.append(sum(bool(x) for x in s))
        votes.append(len(s))
        collided.append(-1 if len(every) < 2 else int(not every[0] and not every[1]))
    return {"right": np.array(right, np.int64), "votes": np.array(votes, np.int64),
            "collided": np.array(collided, np.int64)}


def _moments(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
             ) -> tuple[float, float]:
    """(e, rho) from per-step error shares x and pair-error shares y (optionally weighted)."""
    wt = np.ones(x.size) if weight is None else weight
    n = wt.sum()
    if n < 2:
        return float("nan"), float("nan")
    e = float((wt * x).sum() / n)
    m2 = float((wt * y).sum() / n)
    var = float((wt * (x - e) ** 2).sum() / (n - 1))
    if e <= 0 or e >= 1:
        return e, float("nan")
    return e, (m2 - (e * e - var / n)) / (e * (1 - e))


def p_interval(right: int, votes: int, per_step: float, rho: float | None
               ) -> tuple[float, float]:
    """95% interval of the per-vote accuracy from `right` of `votes` votes taken `per_step`
    a step: Wilson over the votes' effective number. Votes of one step share its error rate,
    so with correlation rho they count as votes / (1 + (per_step - 1) rho) independent ones
    (the design effect; plain Wilson covered p 50-80% of the time at rho = 0.05..0.2)."""
    deff = 1 + max(per_step - 1, 0) * max(rho or 0.0, 0.0)
    lo, hi = wilson(right / deff, votes / deff)
    return float(lo), float(hi)


def _poisson_interval(c: float) -> tuple[float, float]:
    """95% interval of a Poisson mean from a count c (Garwood, by the Wilson-Hilferty
    form of the chi-square quantiles: within a few percent down to c = 0)."""
    z = 1.959964
    hi = (c + 1) * (1 - 1 / (9 * (c + 1)) + z / (3 * math.sqrt(c + 1))) ** 3
    lo = 0.0 if c <= 0 else c * max(1 - 1 / (9 * c) - z / (3 * math.sqrt(c)), 0.0) ** 3
    return lo, hi


def rho_estimate(right: np.ndarray, votes: np.ndarray, seed: int = 0
                 ) -> dict[str, float | int | None]:
    """The pairwise estimator of the within-step correlation (module docstring), with a 95%
    Poisson-bootstrap interval over steps; steps with fewer than two votes are left out."""
    sel = votes >= 2
    n, w = votes[sel].astype(float), (votes[sel] - right[sel]).astype(float)
    x, y = w / np.maximum(n, 1), w * (w - 1) / np.maximum(n * (n - 1), 1)
    e, rho = _moments(x, y)
    out: dict[str, Any] = {"steps": int(sel.sum()),
                           "error": None if math.isnan(e) else float(e),
                           "rho": None if math.isnan(rho) else float(rho),
                           "low": None, "high": None}
    if out["rho"] is None:
        return out
    # Poisson bootstrap: only steps with an error move the sums, the rest only the count
    nz = np.flatnonzero(x > 0)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(_BOOT):
        wt = rng.poisson(1.0, nz.size).astype(float)
        zeros = float(rng.poisson(max(x.size - nz.size, 0)))
        total = wt.sum() + zeros
        if total < 2 or wt.sum() == 0:
            continue
        xs, ys = x[nz], y[nz]
        eb = (wt * xs).sum() / total
        if eb >= 1:  # every resampled step always wrong: no correlation to speak of
            continue
        m2 = (wt * ys).sum() / total
        var = ((wt * (xs - eb) ** 2).sum() + zeros * eb * eb) / (total - 1)
        boot.append((m2 - (eb * eb - var / total)) / (eb * (1 - eb)))
    if boot:
        out["low"], out["high"] = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
    # few error pairs (rare errors, few votes a step): the bootstrap sees almost none and
    # its interval shrinks to a point that misses the truth (measured: 0% coverage at
    # e = 0.002, rho = 0); the Poisson interval of the pair count keeps it honest
    pairs, possible = float((w * (w - 1)).sum() / 2), float((n * (n - 1)).sum() / 2)
    plo, phi = _poisson_interval(pairs)
    e2 = e * e - float(((x - e) ** 2).sum() / max(x.size - 1, 1)) / x.size
    lo_c, hi_c = ((v / possible - e2) / (e * (1 - e)) for v in (plo, phi))
    out["low"] = lo_c if out["low"] is None else min(out["low"], lo_c)
    out["high"] = hi_c if out["high"] is None else max(out["high"], hi_c)
    return out


def measure(right: Any, votes: Any, collided: Any = None, *, steps: int, k: int,
            seed: int = 0, basis: str = "", all_right: Any = None, all_votes: Any = None
            ) -> dict[str, Any]:
    """The `correlation` block of calibrate, bench and report, from per-step counts
    (right votes of valid votes; collided: 1/0 per step, -1 = fewer than two votes).
    `all_right`/`all_votes`: the same steps' counts over every vote, for the p_i <= 0.5
    reading where `right`/`votes` hold only the first votes (a run: see `from_run`).

    `steps` and `k`: the full run whose expected wrong decisions are projected."""
    right, votes = np.asarray(right, np.int64), np.asarray(votes, np.int64)
    keep = votes > 0
    right, votes = right[keep], votes[keep]
    S = int(votes.size)
    if all_votes is None:
        pi = right / np.maximum(votes, 1)
    else:
        ar, av = (np.asarray(a, np.int64)[keep] for a in (all_right, all_votes))
        pi = ar / np.maximum(av, 1)
    out: dict[str, Any] = {"basis": basis, "steps": S, "votes": int(votes.sum()), "k": k,
                           "run_steps": steps}
    # collisions: both first two votes wrong, against what independent errors predict
    if collided is not None:
        col = np.asarray(collided, np.int64)[keep]
        has = col >= 0
        n2, c2 = int(has.sum()), int((col == 1).sum())
        # independent errors predict e^2, e from the counted votes (a run's: each step's
        # first k, which early stopping leaves unbiased; all of a run's votes read e low
        # and so the excess high: 2.5x for independent errors)
        x2 = 1 - (right / np.maximum(votes, 1))[has]
        e2 = float(x2.mean()) if n2 else 0.0
        lo, hi = wilson(c2, n2)
        indep = e2 * e2
        out["collisions"] = {"steps": n2, "count": c2, "rate": c2 / n2 if n2 else 0.0,
                             "low": float(lo), "high": float(hi), "independent": indep,
                             "ratio": (c2 / n2) / indep if n2 and indep > 0 else None}
    # hopeless steps: p^_i <= 0.5
    hop = pi <= 0.5
    h = int(hop.sum())
    lo, hi = wilson(h, S)
    out["hopeless"] = {"count": h, "steps": S, "share": h / S if S else 0.0,
                       "low": float(lo), "high": float(hi), "at_most": min(1.0, 2 * float(hi))}
    # within-step correlation, all steps and the steps that are not hopeless
    allr = rho_estimate(right, votes, seed)
    rest = rho_estimate(right[~hop], votes[~hop], seed)
    out["error"] = float(1 - (right / np.maximum(votes, 1)).mean()) if S else None
    out["rho"], out["rho_low"], out["rho_high"] = allr["rho"], allr["low"], allr["high"]
    out["estimator"] = ("pairwise moments: rho = (E[q^2] - E[q]^2) / (e (1 - e)), "
                        "E[q^2] = mean w(w-1)/(n(n-1)) over steps with n >= 2 votes")
    return _project(out, _fit(rest, hop, pi, S), rest["high"], rest["low"])


def _project(out: dict[str, Any], fit: StepErrors, rho_high: float | None,
             rest_low: float | None = None) -> dict[str, Any]:
    """Add the fitted distribution, the run's expected wrong decisions and the verdict."""
    steps, k, h = out["run_steps"], out["k"], out["hopeless"]
    out["fit"] = {"error": fit.error, "rho": fit.rho, "hopeless": fit.hopeless,
                  "hopeless_p": fit.hopeless_p, "share_hopeless": fit.share_hopeless(),
                  # the rho of the steps that are not hopeless: its 95% lower end (does
                  # the data say their errors concentrate? engine.krule asks)
                  "rho_low": rest_low}
    # the upper reading: rho at its upper end, every step that could be hopeless is
    high_fit = StepErrors(fit.error, min(max(rho_high or fit.rho, fit.rho), 0.999),
                          h["at_most"] if h["steps"] else 0.0,
                          fit.hopeless_p if h["count"] else 0.5)
    out["expected_wrong"] = {"k": k, "steps": steps,
                             "independent": steps * float(p_wrong(1 - (out["error"] or 0), k)),
                             "fitted": fit.expected_wrong(k, steps),
                             "high": high_fit.expected_wrong(k, steps),
                             "p_full_fitted": fit.p_full(k, steps),
                             "k_min_fitted": choose_k(fit, steps, 0.95).k}
    out["verdict"] = verdict(out)
    return out


def beta_from_run_moments(unanimous: float, collided: float, k: int
                          ) -> tuple[float, float] | None:
    """(e, rho) of the beta whose P(k votes all right) = E[(1-q)^k] and P(two votes both
    wrong) = E[q^2] are the given shares; rho below 0 (fewer collisions than independent
    errors at that e) by the moment formula; None if the shares admit no error at all."""
    if unanimous >= 1 or collided < 0:
        return None
    e, rho = _run_moments(np.array([unanimous], float), np.array([collided], float), k)
    return float(e[0]), float(rho[0])


def _run_moments(unanimous: np.ndarray, collided: np.ndarray, k: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """`beta_from_run_moments` for arrays of shares at once (the bootstrap's draws): the
    same bisections, vectorised. Shares must be < 1 (unanimous) and >= 0 (collided)."""
    def all_right(e: np.ndarray, rho: np.ndarray) -> np.ndarray:
        n = 1 / np.maximum(rho, 1e-300) - 1
        out = np.ones_like(e)
        for j in range(k):
            out *= ((1 - e) * n + j) / (n + j)
        return np.where(rho <= 0, (1 - e) ** k, out)

    def e_for(rho: np.ndarray) -> np.ndarray:  # all_right falls as e grows
        lo, hi = np.zeros_like(rho), np.ones_like(rho)
        for _ in range(60):
            mid = (lo + hi) / 2
            up = all_right(mid, rho) > unanimous
            lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
        return (lo + hi) / 2

    def pairs(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = e_for(rho)
        return e * e + rho * e * (1 - e), e

    zero = np.zeros_like(unanimous)
    p0, e0 = pairs(zero)
    inner = (e0 > 0) & (e0 < 1)
    rho0 = np.where(inner, (collided - e0 * e0) / np.where(inner, e0 * (1 - e0), 1.0), 0.0)
    top = np.full_like(unanimous, 0.999)
    ptop, etop = pairs(top)
    lo, hi = zero.copy(), top.copy()
    for _ in range(50):
        mid = (lo + hi) / 2
        below = pairs(mid)[0] < collided
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    rho_b = (lo + hi) / 2
    e_b = e_for(rho_b)
    few = p0 >= collided  # no more collisions than independent errors give
    many = ptop <= collided
    e = np.where(few, e0, np.where(many, etop, e_b))
    rho = np.where(few, rho0, np.where(many, 0.999, rho_b))
    return e, rho


def from_decisions(votes: np.ndarray, wrong: np.ndarray, collisions: int, k: int,
                   run_steps: int, contested: list[dict[str, Any]] | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """The block from a run's decisions alone (what `report` reads: no pass over every
    vote). Ahead-by-k keeps asking only where votes disagree, so a step's votes beyond its
    first k are not a sample of its error rate; two shares are, since every decided step
    has at least k >= 2 votes whatever they said:
      A = steps decided with exactly k votes, right: their first k votes all right,
          E[(1-q)^k];
      C = steps whose first two valid votes were both wrong (collisions): E[q^2].
    The beta with both moments gives e and rho (`beta_from_run_moments`); 95% interval by
    a multinomial bootstrap of the two counts. Steps decided wrong stand for p_i <= 0.5:
    such a step is decided wrong at least half the time (one wrong answer), so the true
    share is at most twice what is seen (`at_most`). Needs the reference: without one no
    vote is known wrong (`contested`: a few contested steps as `store.reads.hardest_steps`
    gives them; an answer there with no verdict means the run had no reference)."""
    referenced = all(a.get("correct") is not None for h in contested or []
                     for a in h["answers"])
    S = int(votes.size)
    out: dict[str, Any] = {"basis": f"the decisions of {S:,} steps (votes per step, decided "
                           "right or wrong) and their first two votes", "steps": S,
                           "votes": int(votes.sum()), "k": k, "run_steps": run_steps,
                           "referenced": referenced,
                           "estimator": "beta moments: P(first k votes all right) = "
                           "E[(1-q)^k] and P(first two both wrong) = E[q^2]"}
    nwrong = int(wrong.sum())
    lo, hi = wilson(nwrong, S)
    out["hopeless"] = {"count": nwrong, "steps": S, "share": nwrong / S if S else 0.0,
                       "low": float(lo), "high": float(hi),
                       "at_most": min(1.0, 2 * float(hi)) if referenced else 1.0,
                       "reading": "steps decided wrong"}
    unan = int(((votes == k) & (wrong == 0)).sum())
    fit = beta_from_run_moments(unan / S, collisions / S, k) if S and k >= 2 else None
    if not referenced or fit is None:
        out.update(error=None, rho=None, rho_low=None, rho_high=None)
        return _project(out, StepErrors(0.0), None)
    e, rho = fit
    out["error"], out["rho"] = e, rho
    lo_c, hi_c = wilson(collisions, S)
    out["collisions"] = {"steps": S, "count": collisions, "rate": collisions / S,
                         "low": float(lo_c), "high": float(hi_c), "independent": e * e,
                         "ratio": collisions / S / (e * e) if e > 0 else None}
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(S, [unan / S, collisions / S, 1 - (unan + collisions) / S],
                            size=_BOOT)
    ok = draws[:, 0] < S  # a draw with every step unanimous admits no error at all
    boot = _run_moments(draws[ok, 0] / S, draws[ok, 1] / S, k)[1].tolist()
    out["rho_low"], out["rho_high"] = ((float(v) for v in np.percentile(boot, [2.5, 97.5]))
                                       if boot else (None, None))
    # few collisions: widen by the Poisson interval of their count (as rho_estimate does)
    clo, chi = _poisson_interval(collisions)
    by_count = _run_moments(np.array([unan / S] * 2), np.array([clo, chi]) / S, k)[1]
    out["rho_low"] = float(by_count[0]) if out["rho_low"] is None else \
        min(out["rho_low"], float(by_count[0]))
    out["rho_high"] = float(by_count[1]) if out["rho_high"] is None else \
        max(out["rho_high"], float(by_count[1]))
    share = nwrong / S
    return _project(out, StepErrors(min(e, 0.999), min(max(rho, 0.0), 0.999), share, 0.5),
                    out["rho_high"], out["rho_low"])


def from_run(steps_votes: Iterable[Any], k: int, run_steps: int) -> dict[str, Any]:
    """The block from a run's recorded votes (`store.reads.final_votes`: each decided step's
    valid votes of its final epoch, in order). A vote is right when its answer matches the
    reference; without a reference, when it matches the decided answer (then a step decided
    wrong looks right: the numbers describe agreement, and the basis says so).

    Ahead-by-k stops early on easy steps, so a step's later votes are there only because
    its first ones disagreed: rho and the error use each step's first min(k, 2..) votes,
    which every decided step has whatever they said (no stopping bias); p_i <= 0.5 uses all
    its votes (a step decided wrong has most of its votes wrong)."""
    first = max(2, k)
    right, votes, allr, allv, coll = [], [], [], [], []
    referenced = True
    for sv in steps_votes:
        marks = []
        for a in sv.votes:
            c = sv.correct.get(a)
            if c is None:
                referenced = False
                c = int(a == sv.winner)
            marks.append(c == 1)
        head = marks[:first]
        right.append(sum(head))
        votes.append(len(head))
        allr.append(sum(marks))
        allv.append(len(marks))
        coll.append(-1 if len(marks) < 2 else int(not marks[0] and not marks[1]))
    basis = (f"each decided step's first {first} valid votes (rho, collisions), all its "
             f"votes (p_i <= 0.5), right = "
             + ("agrees with the reference" if referenced else
                "agrees with the decided answer (no reference)"))
    out = measure(right, votes, coll, steps=run_steps, k=k, basis=basis, all_right=allr,
                  all_votes=allv)
    out["referenced"] = referenced
    return out


def _fit(rest: dict[str, Any], hop: np.ndarray, pi: np.ndarray, S: int) -> StepErrors:
    """Hopeless steps as a point mass at their mean observed accuracy, the rest a beta fitted
    by moments (rho clipped to [0, 0.999])."""
    share = float(hop.sum() / S) if S else 0.0
    hp = float(pi[hop].mean()) if hop.any() else 0.5
    e = rest["error"] if rest["error"] is not None else 0.0
    rho = float(min(max(rest["rho"] or 0.0, 0.0), 0.999))
    return StepErrors(min(max(e, 0.0), 0.999), rho, share, min(hp, 0.5))


def verdict(c: dict[str, Any]) -> str:
    """One plain sentence on what the correlation block means for the run."""
    ew, h = c["expected_wrong"], c["hopeless"]
    n = f"{ew['steps']:,}"
    if h["count"]:
        return (f"{h['count']} of {h['steps']:,} steps ({h['share']:.2%}) are right at most "
                f"half the time: voting makes their wrong answer likely, whatever k. "
                f"Expect about {ew['fitted']:,.3g} wrong decisions in {n} steps at "
                f"k={ew['k']} (independent errors would give {ew['independent']:.3g}); "
                f"fix those steps before a long run.")
    rho = c.get("rho")
    if rho is None:
        return (f"No errors seen, so correlation cannot be measured; up to "
                f"{h['at_most']:.2%} of steps could still be hopeless "
                f"(at most {ew['high']:,.3g} wrong decisions in {n} steps at k={ew['k']}).")
    return (f"Within-step correlation rho = {rho:.3g} (95% {c['rho_low'] or 0:.3g}.."
            f"{c['rho_high'] or 0:.3g}); expect about {ew['fitted']:.3g} wrong decisions in "
            f"{n} steps at k={ew['k']} (independent errors: {ew['independent']:.3g}; "
            f"at most {ew['high']:,.3g} if up to {h['at_most']:.2%} of steps are hopeless).")


def format_lines(c: dict[str, Any], width: int = 12) -> list[str]:
    """The block as a few lines of text (calibrate, bench, report print them), labels
    padded to `width` to line up with the caller's."""
    def line(label: str, text: str) -> str:
        return f"{label:<{max(width, len(label) + 1)}}{text}"

    lines = []
    col = c.get("collisions")
    if col:
        ratio = f", {col['ratio']:.3g}x" if col["ratio"] is not None else ""
        lines.append(line("collisions", f"{col['count']:,} of {col['steps']:,} steps "
                          f"({col['rate']:.3%}, 95% {col['low']:.3%}..{col['high']:.3%}); "
                          f"independent errors predict {col['independent']:.3%}{ratio}"))
    rho = c.get("rho")
    lines.append(line("correlation", "n/a (no errors seen)" if rho is None else
                      f"rho {rho:.3g} (95% {c['rho_low'] or 0:.3g}..{c['rho_high'] or 0:.3g}) "
                      f"within a step, error {c['error']:.4g} per vote"))
    h = c["hopeless"]
    lines.append(line("p_i <= 0.5", f"{h['count']:,} of {h['steps']:,} steps"
                      + (f" ({h['reading']})" if h.get("reading") else "")
                      + f" ({h['share']:.2%}, 95% up to {h['high']:.2%}; true share at most "
                      f"{h['at_most']:.2%})"))
    ew = c["expected_wrong"]
    if rho is None and not h["count"] and not ew["fitted"]:  # a clean sample: said plainly
        lines.append(line("run errors", f"none seen, none expected in {ew['steps']:,} steps "
                          f"at k={ew['k']} (a sample this size cannot rule out up to "
                          f"{ew['high']:,.3g}: its 95% bound)"))
    else:
        lines.append(line("run errors", f"{ew['fitted']:,.3g} wrong decisions expected in "
                          f"{ew['steps']:,} steps at k={ew['k']} (at most {ew['high']:,.3g}; "
                          f"independent errors {ew['independent']:.3g})"))
    return lines


# ------------------------------------------------------------------------- planning
def plan_under(dist: StepErrors, k: int, steps: int, target: float, valid: float = 1.0,
               tokens_in: float = 0.0, tokens_out: float = 0.0, tokens_reasoning: float = 0.0,
               price_in: float = 0.0, price_out: float = 0.0) -> dict[str, Any]:
    """What `plan` predicts when steps' error rates follow `dist`: at k, the expected wrong
    decisions, P(every step right), votes, samples and cost; the k that reaches the target
    under this distribution (None: no k does); steps undecided after votes 1..2k+1."""
    from .scaling import token_costs

    votes = dist.votes(k)
    samples = votes / valid * steps
    c = token_costs(samples * tokens_in, samples * tokens_out, samples * tokens_reasoning,
                    price_in, price_out)
    return {"error": dist.error, "rho": dist.rho, "hopeless": dist.hopeless,
            "hopeless_p": dist.hopeless_p, "share_hopeless": dist.share_hopeless(), "k": k,
            "expected_wrong": dist.expected_wrong(k, steps),
            "expected_wrong_independent": steps * float(p_wrong(1 - dist.mean_error(), k)),
            "p_full": dist.p_full(k, steps), "k_min": choose_k(dist, steps, target).k,
            "votes_per_step": votes, "samples_per_step": votes / valid,
            "samples_total": samples, "cost": c["total"],
            "undecided_after_vote": [round(u, 3) for u in dist.undecided(k, 2 * k + 1, steps)]}
