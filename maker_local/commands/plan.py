"""`maker-local plan`: k_min, success odds, samples and cost from the scaling laws."""
from __future__ import annotations

import argparse
import json

from ..core.errors import UsageError
from . import checks


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = checks.HelpFormatter
    p.add_argument("--error", type=checks.number(0, 1, hi_open=True), default=None,
                   help="per-sample error 1-p")
    p.add_argument("--calibration", type=checks.existing_file, default=None,
                   help="a calibration JSON (maker-local "
                   "calibrate): error, valid rate and tokens for the flags not given")
    p.add_argument("--steps", type=checks.at_least(1), default=2**20 - 1,
                   help="steps s (default 1,048,575)")
    p.add_argument("--target", type=checks.fraction(), default=0.95,
                   help="target success probability t")
    p.add_argument("--valid", type=checks.number(0, 1, lo_open=True), default=None,
                   help="share of samples not red-flagged (default 1)")
    p.add_argument("--k", type=checks.at_least(1), default=None,
                   help="use this k instead of k_min")
    p.add_argument("--tokens-out", type=checks.number(0), default=None,
                   help="mean output tokens/sample")
    p.add_argument("--tokens-reasoning", type=checks.number(0), default=None,
                   help="mean thought tokens/sample, part of --tokens-out (reasoning models)")
    p.add_argument("--tokens-in", type=checks.number(0), default=None,
                   help="mean input tokens/sample")
    p.add_argument("--price-out", type=checks.number(0), default=0.0,
                   help="$ per million output tokens")
    p.add_argument("--price-in", type=checks.number(0), default=0.0,
                   help="$ per million input tokens")
    p.add_argument("--correlation", type=checks.number(0, 1, hi_open=True), default=None,
                   metavar="RHO", help="within-step correlation of errors (intraclass, "
                   "as calibrate measures it): also predict under per-step error rates that "
                   "are a beta with mean --error and this ICC (default: the calibration's, "
                   "else independent errors only)")
    p.add_argument("--hopeless", type=checks.fraction(), default=None, metavar="SHARE",
                   help="with --correlation: share of steps right at most half the time "
                   "(counted at p_i = 0.5, wrong half the time)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def main(args: argparse.Namespace) -> int:
    import sys

    from ..voting.correlation import plan_under
    from ..voting.steperrors import StepErrors
    from ..voting.krule import choose_k, planning_distribution, prediction_line
    from ..voting.scaling import plan

    dist = None  # (StepErrors, where it came from) when predicting under correlation
    # the figures planned with: the flags, then the calibration's for those not given
    v = {key: getattr(args, key) for key in ("error", "valid", "tokens_out", "tokens_in",
                                             "tokens_reasoning")}
    if args.calibration is not None:
        from ..analysis.accuracy import read_calibration
        try:
            cal, est = read_calibration(args.calibration)
        except ValueError as e:
            raise UsageError(str(e)) from None
        # the interval's low end, as solve's and bench's --k auto (maker_local.analysis.accuracy)
        p, source = est.conservative, est.source
        if args.error is None:
            print(f"plan: p={p:.4f} ({source})", file=sys.stderr)
        given = {"error": 1 - p, "valid": cal["valid"],
                 "tokens_out": cal["tokens_out_mean"], "tokens_in": cal["tokens_in_mean"],
                 "tokens_reasoning": cal.get("tokens_reasoning_mean", 0.0)}
        for key, value in given.items():
            if v[key] is None:
                v[key] = value
        if args.correlation is None and args.hopeless is None and v["error"] == 1 - p:
            # what solve --k auto plans with (engine.krule: THE rule, one for all commands)
            dist = (planning_distribution(cal), est.plan_source)
    if v["error"] is None:
        raise UsageError("give --error (per-sample error 1-p) or --calibration FILE")
    if args.hopeless is not None and args.correlation is None:
        raise UsageError("--hopeless goes with --correlation RHO (0 for independent errors "
                         "on the other steps)")
    if args.correlation is not None:
        dist = (StepErrors(v["error"], args.correlation, args.hopeless or 0.0, 0.5),
                "--correlation")
    error = v["error"]
    valid = 1.0 if v["valid"] is None else v["valid"]
    tokens_in, tokens_out = v["tokens_in"] or 0.0, v["tokens_out"] or 0.0
    tokens_reasoning = v["tokens_reasoning"] or 0.0
    # k: as given, else THE rule over what is known (independent errors at --error alone:
    # then it is the paper's k_min)
    k = args.k
    if dist is None and not error < 0.5:  # a typed error rate, not a measured one
        raise UsageError(f"--error {error:g}: per-sample accuracy must be above 0.5; "
                         "voting cannot fix a model that is wrong at least half the time")
    planned = dist[0] if dist is not None else StepErrors(error)
    where = dist[1] if dist is not None else ""
    try:
        if k is None:
            rule = choose_k(planned, args.steps, args.target, where=where)
            if rule.k is None:
                print(f"plan: {rule.line()}; give --k N to see a plan at N anyway",
                      file=sys.stderr)
                return 2
            k = rule.k
        elif dist is not None:
            print(f"plan: {prediction_line(planned, k, args.steps, args.target, where)}",
                  file=sys.stderr)
        r = plan(1 - error, args.steps, args.target, valid, k, tokens_in,
                 tokens_out, args.price_in, args.price_out, tokens_reasoning)
    except ValueError as e:
        raise UsageError(str(e)) from None
    corr = None
    if dist is not None:
        try:
            corr = plan_under(dist[0], r.k, args.steps, args.target, valid,
                              tokens_in, tokens_out, tokens_reasoning,
                              args.price_in, args.price_out)
        except ValueError as e:
            raise UsageError(str(e)) from None
        corr["source"] = dist[1]
    if args.json:
        print(json.dumps({**r.as_dict(), **({"correlated": corr} if corr else {})}))
        return 0
    print(f"k_min            {r.k}" + (" (given)" if args.k is not None else
                                      f" (the rule: {dist[1]})" if dist else ""))
    print(f"p_step           {r.p_step:.12f}")
    print(f"p_full           {r.p_full:.6f}  (target {r.target})")
    print(f"votes/step       {r.votes_per_step:.4f}")
    print(f"samples/step     {r.samples_per_step:.4f}  (valid rate {r.valid})")
    print(f"samples total    {r.samples_total:,.0f}")
    if r.tokens_in_total or r.tokens_out_total:
        print(f"tokens total     in {r.tokens_in_total:,.0f}, out {r.tokens_out_total:,.0f} "
              f"(thought {r.tokens_reasoning_total:,.0f}, "
              f"answer {r.tokens_out_total - r.tokens_reasoning_total:,.0f})")
        print(f"cost             ${r.cost:,.2f} (input ${r.cost_in:,.2f}, thought "
              f"${r.cost_thought:,.2f}, answer ${r.cost_answer:,.2f})")
    if corr:
        print_correlated(corr, r.k)
    return 0


def print_correlated(c: dict, k: int) -> None:
    """The plan again when errors are correlated within a step."""
    km = c["k_min"]
    print(f"under correlation: rho {c['rho']:.4g}, error {c['error']:.4g} per vote"
          + (f", {c['hopeless']:.3g} of steps hopeless" if c["hopeless"] else "")
          + f" ({c['source']})")
    print(f"  wrong decisions  {c['expected_wrong']:,.4g} expected at k={k} (independent "
          f"errors: {c['expected_wrong_independent']:.4g}); steps with p_i <= 0.5: "
          f"{c['share_hopeless']:.3g}")
    print(f"  p_full           {c['p_full']:.6f}")
    print(f"  k_min            " + (str(km) if km is not None else
                                    "none: no k reaches the target (hopeless steps)"))
    print(f"  votes/step       {c['votes_per_step']:.4f}")
    print(f"  samples total    {c['samples_total']:,.0f}"
          + (f", cost ${c['cost']:,.2f}" if c["cost"] else ""))
    und = c["undecided_after_vote"]
    print("  undecided after  " + ", ".join(f"vote {i + 1}: {u:,.3g}"
                                             for i, u in enumerate(und) if i + 1 >= k))
