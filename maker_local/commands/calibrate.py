"""`maker-local calibrate`: measure a model's per-step accuracy and recommend k.

The measuring, the estimate and the file live in `maker_local.calibrate` (statistics in
`maker_local.core.stats`); this module parses flags, draws the plots and prints the summary.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..backends import kind
from ..core.errors import UsageError
from . import checks
from .common import add_backend_args, make_task
from .settings import Settings, answer_room, resolve

DEFAULT_OUT = Path("runs/calibration/calibration.json")


TASK_PURPOSE = "calibrate"  # cli adds --task and the task's own flags (sizes to sweep)


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = checks.HelpFormatter
    p.add_argument("--steps-per-size", type=checks.at_least(1), default=100,
                   help="random steps per task size (all steps when there are fewer)")
    p.add_argument("--samples", type=checks.at_least(2), default=10, help="samples R of each step")
    p.add_argument("--seed", type=checks.at_least(0, 1023), default=0,
                   help="calibration seed (0..1023)")
    p.add_argument("--target", type=checks.fraction(), default=0.95,
                   help="success probability of the whole run that k is chosen for")
    p.add_argument("--run-steps", type=checks.at_least(1), default=2**20 - 1,
                   help="steps s of the run to plan for (default 1,048,575, the million-step run)")
    p.add_argument("--out", type=checks.path, default=DEFAULT_OUT, help="the JSON file to write "
                   "(plots go beside it)")
    add_backend_args(p)  # --temperature / --max-tokens: the profile's (cap x4 if not given)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def generous_cap(args: argparse.Namespace, settings: Settings) -> int:
    """calibrate's --max-tokens when none is given: 4 x the profile's, so the length tail is
    measured, not cut, but no more than a local model's context leaves after the prompts (a
    server refuses such a request with HTTP 400; an engine in process stops there anyway)
    and never below the profile's own cap."""
    own = settings.max_tokens
    room = answer_room(args, settings, grid=True) if kind(settings.backend).has_model else None
    return own * 4 if room is None else max(own, min(own * 4, room))


def main(args: argparse.Namespace) -> int:
    from ..backends import make_backend
    from ..calibrate import CalibrationConfig, calibrate, write
    from ..driver.failures import BackendFailed, Retrying

    checks.check_out_file(args.out)
    s = resolve(args)
    if args.max_tokens is None:
        s = s.with_cap(generous_cap(args, s))
    try:
        tasks = make_task(args, s.style, grid=True)
        if kind(s.backend).has_model:  # the sizes the model supports
            from ..models.profiles import check_sizes
            check_sizes(s.profile, tasks)
        cfg = CalibrationConfig(tasks, args.steps_per_size, args.samples, s.temperature,
                                s.max_tokens, s.constrained, args.seed,
                                args.target, args.run_steps)
        cfg.check()
        # one backend for every size: it reads each request's own input and prompt
        backend = make_backend(s.backend, tasks[-1], s.options)
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        # failed requests are asked again with the same seeds, as in solve
        result = calibrate(cfg, Retrying(backend, then="Nothing was written: calibrate "
                                         "again once this is fixed"))
    except ValueError as e:
        raise UsageError(str(e)) from None
    except BackendFailed as e:
        print(f"maker-local: {e}", file=sys.stderr)
        return 3
    finally:
        backend.close()
    plots = plot(result, args.out.with_suffix(""))
    result["plots"] = [p.name for p in plots]
    write(result, args.out)
    print(json.dumps(result) if args.json else format_result(result))
    print(f"wrote {args.out} and {', '.join(p.name for p in plots)}", file=sys.stderr)
    return 0


def plot(result: dict[str, Any], stem: Path) -> list[Path]:
    """Error vs output length (Fig. 9a), p by task size (Fig. 6a), histogram of p_i."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stem.parent.mkdir(parents=True, exist_ok=True)

    def save(fig: Any, name: str) -> Path:
        path = stem.parent / f"{stem.name}_{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path

    def bars(rows: list[dict], key: str) -> np.ndarray:
        # asymmetric Wilson error bars; clipped at 0 against rounding
        return np.maximum(0, np.array([[r[key] - r["low" if key == "error" else "p_low"]
                                        for r in rows],
                                       [r["high" if key == "error" else "p_high"] - r[key]
                                        for r in rows]]))

    out = []
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = result["error_by_length"]
    if bins:
        ax.errorbar([(b["lo"] + b["hi"]) / 2 for b in bins], [b["error"] for b in bins],
                    yerr=bars(bins, "error"), marker="o", capsize=3)
    ax.axvline(result["cap"], color="grey", ls="--", label=f"suggested cap {result['cap']}")
    ax.set(xlabel="output tokens (valid samples)", ylabel="error rate (95% Wilson)",
           title="Error against output length")
    ax.legend()
    ax.grid(alpha=0.3)
    out.append(save(fig, "error_vs_length"))

    fig, ax = plt.subplots(figsize=(6, 4))
    rows = [r for r in result["by_size"] if r["p"] is not None]
    if rows:
        ax.errorbar([r["size"] for r in rows], [r["p"] for r in rows], yerr=bars(rows, "p"),
                    marker="o", capsize=3)
    label = result["config"].get("size_label", "size")
    ax.set(xlabel=label, ylabel="per-sample accuracy p (95% Wilson)",
           title=f"Accuracy by {label}")
    ax.grid(alpha=0.3)
    out.append(save(fig, "p_by_size"))

    fig, ax = plt.subplots(figsize=(6, 4))
    h = result["per_step_p"]["hist"]
    ax.bar(h["edges"][:-1], h["counts"], width=np.diff(h["edges"]), align="edge")
    ax.set_yscale("symlog", linthresh=1)
    ax.axvline(0.5, color="red", ls="--", label="p_i = 0.5: voting cannot fix such a step")
    ax.set(xlabel="per-step accuracy p_i", ylabel="steps", title="Per-step accuracy")
    ax.legend()
    out.append(save(fig, "p_i_hist"))
    return out


def format_result(r: dict[str, Any]) -> str:
    """A short human summary; the verdict is printed plainly."""
    sm, su, b = r["samples"], r["success"], r["bad_steps"]
    to = r["tokens"]["out"]
    fl = ", ".join(f"{k} {n}" for k, n in sm["flagged_by_reason"].items() if n) or "none"
    lines = [
        f"samples     {sm['total']:,} ({sm['valid']:,} valid, flagged: {fl}, "
        f"backend errors {sm['errors']})",
        f"p           {r['p']:.4f}  (95% {r['p_low']:.4f} .. {r['p_high']:.4f}; "
        f"error {1 - r['p']:.4f})",
        f"valid v     {r['valid']:.4f}  (95% {r['valid_low']:.4f} .. {r['valid_high']:.4f})",
    ]
    if r["repair"]:
        lines.append(f"repairing   p {r['repair']['p']:.4f}, valid {r['repair']['valid']:.4f}")
    lines += [
        f"tokens out  mean {to['mean']:.0f}, p50 {to['p50']:.0f}, p90 {to['p90']:.0f}, "
        f"p99 {to['p99']:.0f}; in mean {r['tokens_in_mean']:.0f}",
        *([f"thought     mean {r['tokens_reasoning_mean']:.1f} tokens, answer mean "
           f"{r['tokens_out_mean'] - r['tokens_reasoning_mean']:.1f} (both priced by plan "
           "--calibration)"] if r.get("tokens_reasoning_mean") else []),
        f"cap         --max-tokens {r['cap']} (cuts {r['cap_cuts']:.1%} of valid samples)",
        f"collisions  {r['collisions']['count']} / {r['collisions']['steps']} steps "
        f"({r['collisions']['rate']:.4f}; independent errors: "
        f"{r['collisions']['independent']:.4f})",
        f"per step    p_i min {r['per_step_p']['min']:.2f}, p10 {r['per_step_p']['p10']:.2f}; "
        f"{r['per_step_p']['share_below_1']:.1%} of steps had a wrong sample",
        f"bad steps   {b['count']} / {b['steps']} with a wrong answer >= the right one "
        f"({b['share']:.4f}, 95% up to {b['high']:.4f}; a zero-error run needs < "
        f"{b['needed_below']:.1e})",
        f"k_min       {r['k_min']} (conservative {r['k_min_conservative']}, heterogeneous "
        f"{r['k_min_heterogeneous']}) for t={r['target']} over s={r['run_steps']:,}",
        f"p_full      formula {su['p_full_formula']:.4g}, measured heterogeneity "
        f"{su['p_full_heterogeneous']:.4g} (95% {su['p_full_heterogeneous_low']:.3g} .. "
        f"{su['p_full_heterogeneous_high']:.3g}) at k={su['k']}",
        f"            at most {su['p_full_at_most']:.4g} (unbiased bound from repeated wrong "
        f"answers)" if su["p_full_at_most"] is not None else
        f"            (no unbiased bound: needs --samples >= {su['k']})",
        su["verdict"],
        *_correlation_lines(r.get("correlation")),
        f"recommend   --k {r['k']} --max-tokens {r['cap']} ({r['k_rule']['line']})"
        if r["k"] and r.get("k_rule") else f"recommend   --k {r['k']} --max-tokens {r['cap']}"
        if r["k"] else f"recommend   no k: {(r.get('k_rule') or {}).get('line', 'none')}",
    ]
    return "\n".join(lines + [f"warning: {w}" for w in r["warnings"]])


def _correlation_lines(c: dict[str, Any] | None) -> list[str]:
    """Within-step correlation, hopeless steps and expected wrong decisions (files written
    before the block existed have none)."""
    if not c:
        return []
    from ..voting.correlation import format_lines
    return [line for line in format_lines(c) if not line.startswith("collisions")] + \
        [c["verdict"]]
