"""`maker-local bench`: measure what one reliable step costs on this machine.

A thin command over `maker_local.analysis.bench` (like `vllm bench serve`): it resolves the
backend as `solve` does, runs an untimed warm-up slice and a timed slice of a solve of the chosen
task (`--task`, its own size flags), prints an aligned table and then one JSON line (keys: see
`maker_local.analysis.bench`), and with `--out` writes that JSON with metadata (model, engine
and version, device, date, git commit, flags).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import kind
from ..core.errors import UsageError
from ..voting.rules import DEFAULT_RULE
from . import checks
from .common import RULE_HELP, add_backend_args, decide_k, make_task
from .settings import Settings, resolve

TASK_PURPOSE = "bench"  # cli adds --task and the task's own flags


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = checks.HelpFormatter
    s = p.add_argument_group("the slice (of the task's run, voted in rounds, in memory: no "
                             "ledger)")
    s.add_argument("--start", type=int, default=None, help="first (warm-up) step; default: "
                   "the slice centred on the middle of the run (input by closed form)")
    s.add_argument("--warmup", type=int, default=200, help="steps voted before timing starts")
    s.add_argument("--steps", type=int, default=2000, help="steps voted while timed")
    s.add_argument("--k", type=checks.k_or_auto(1 << 16), default=None,
                   help="votes a key must lead by, or 'auto'; default as "
                   "in solve: auto when the accuracy was measured (card, --calibration), else 3")
    s.add_argument("--rule", default=DEFAULT_RULE, metavar="RULE", help=RULE_HELP)
    s.add_argument("--target", type=checks.fraction(), default=0.95,
                   help="success probability of the full run that k auto and k_min aim for")
    s.add_argument("--window", type=checks.at_least(1),
                   help="steps voted at once (default: the backend's)")
    s.add_argument("--seed", type=int, default=0, help="run seed")
    s.add_argument("--check-legal", action="store_true",
                   help="red-flag answers that break the task's rules (not the voting --rule)")
    s.add_argument("--rules", action=checks.Renamed, dest="check_legal", new="--check-legal")
    s.add_argument("--max-samples", type=checks.at_least(1, 1 << 16), default=1000,
                   help="end the slice when a step is undecided after this many samples")
    s.add_argument("--max-seconds", type=checks.number(0, lo_open=True), default=None,
                   help="end each slice (warm-up, "
                   "timed) after the round that passes this many seconds; for models that "
                   "cannot decide, e.g. --dummy-weights")
    add_backend_args(p)
    c = p.add_argument_group("cost")
    c.add_argument("--price-per-hour", type=checks.number(0), default=None, help="USD per GPU (or "
                   "machine) hour (default: the profile's usd_per_gpu_hour, else 0)")
    c.add_argument("--gpus", type=checks.number(0, lo_open=True), default=None,
                   help="GPUs the wall time is multiplied "
                   "by (default: one per vllm-http server, else 1 GPU or 1 CPU machine)")
    c.add_argument("--run-steps", type=checks.at_least(1), default=None,
                   help="steps of the full run to project (default: the task's)")
    a = p.add_argument_group("projection from a plugged-in accuracy (when it cannot be "
                             "measured here, e.g. --dummy-weights)")
    a.add_argument("--calibration", type=checks.existing_file,
                   help="a calibration JSON (maker-local "
                   "calibrate): p, valid, tokens; also --k auto")
    a.add_argument("--paper-figures", metavar="PROFILE", type=checks.text, default=None,
                   help="take p and tokens_out from a profile's [paper] table")
    a.add_argument("--p", type=checks.number(0, 1), default=None, help="per-sample accuracy p")
    a.add_argument("--tokens-out", type=checks.number(0), default=None,
                   help="mean output tokens/sample")
    a.add_argument("--tokens-in", type=checks.number(0), default=None,
                   help="mean input tokens/sample")
    a.add_argument("--valid", type=checks.number(0, 1, lo_open=True), default=None,
                   help="share of samples not red-flagged (default 1, or the calibration's)")
    a.add_argument("--tokens-per-second", type=checks.number(0, lo_open=True), default=None,
                   help="output tokens/s of the machine (default: measured by this bench)")
    p.add_argument("--out", type=checks.path, default=None,
                   help="write the JSON with metadata here")


def plugged_accuracy(args: argparse.Namespace, run_steps: int) -> Any:
    """The Accuracy the projection plugs in, or None (`maker_local.analysis.accuracy.plugged`: a
    calibration's p is its interval's low end, the p its --k auto reads)."""
    from ..analysis.accuracy import plugged

    return plugged(calibration=args.calibration, paper_figures=args.paper_figures, p=args.p,
                   tokens_out=args.tokens_out, tokens_in=args.tokens_in, valid=args.valid,
                   tokens_per_second=args.tokens_per_second, run_steps=run_steps,
                   target=args.target)


def _check(args: argparse.Namespace, total: int) -> tuple[int, int]:
    """The slice's first step and the run to project; UsageError for what cannot be run."""
    if args.steps < 1:
        raise UsageError(f"--steps must be at least 1 (got {args.steps})")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be at least 0 (got {args.warmup})")
    if (args.start or 0) < 0:
        raise UsageError(f"--start must be at least 0 (got {args.start})")
    span = args.warmup + args.steps
    start = max(0, (total - span) // 2) if args.start is None else args.start
    if start + span > total:
        raise UsageError(f"--start {start} + --warmup {args.warmup} + --steps {args.steps} "
                         f"runs past the last step of the run ({total:,} steps); "
                         f"use a --start in 0..{max(0, total - span)} or fewer steps")
    run_steps = total if args.run_steps is None else args.run_steps
    if run_steps < 1:
        raise UsageError("--run-steps must be at least 1")
    for name in ("price_per_hour", "max_seconds"):
        if (getattr(args, name) or 0) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0")
    if args.gpus is not None and args.gpus <= 0:
        raise UsageError("--gpus must be > 0")
    from ..voting.seeds import MAX_RUN_SEED
    if not 0 <= args.seed <= MAX_RUN_SEED:
        raise UsageError(f"--seed must be in 0..{MAX_RUN_SEED}")
    return start, run_steps


def machine_count(args: argparse.Namespace, backend: Any) -> tuple[float, str]:
    """What the wall time is multiplied by, and what it counts."""
    if args.gpus is not None:
        return args.gpus, "GPU (--gpus)"
    if kind(backend.name).served:
        return len(backend.base_urls), "vLLM server (one GPU each; --gpus to change)"
    if backend.gpu:
        return 1, "GPU"
    return 1, "machine (CPU)"


@dataclass(frozen=True)
class BenchPlan:
    """What a bench will measure, every option checked and nothing started: the task (built
    once), the settings, the slice, the full run it projects to and its k."""
    task: Any
    settings: Settings
    start: int
    run_steps: int
    k: int
    accuracy: Any  # the plugged-in Accuracy of the projection, or None
    price: float  # USD per machine-hour


def plan_bench(args: argparse.Namespace) -> BenchPlan:
    """Check every option and settle what will be measured, starting nothing."""
    from ..voting.rules import get_rule

    try:
        get_rule(args.rule)
    except ValueError as e:
        raise UsageError(str(e)) from None
    settings = resolve(args)
    task = make_task(args, settings.style)
    if kind(settings.backend).has_model:  # the sizes the model supports
        from ..models.profiles import check_sizes
        check_sizes(settings.profile, [task])
    start, run_steps = _check(args, task.num_steps())
    if args.out is not None:
        checks.check_out_file(args.out)
    acc = plugged_accuracy(args, run_steps)
    price = args.price_per_hour if args.price_per_hour is not None else \
        (settings.profile is not None and settings.profile.price.usd_per_gpu_hour) or 0.0
    k = decide_k(args, settings, task, run_steps)[0]  # a refusal starts no engine
    return BenchPlan(task, settings, start, run_steps, k, acc, price)


def main(args: argparse.Namespace) -> int:
    from ..analysis.bench import format_table, paper_projections, project_plugged

    plan = plan_bench(args)
    from ..driver.failures import BackendFailed
    try:
        result, env = measure(args, plan)
    except BackendFailed as e:
        print(f"maker-local: {e}", file=sys.stderr)
        return 3
    acc, run_steps = plan.accuracy, plan.run_steps
    tok_s = args.tokens_per_second or result["tokens_out_per_s"]
    given = result["k"] if args.k not in (None, "auto") else None
    if acc is not None and acc.k is None and given is None:
        raise UsageError(f"bench: the projection's accuracy ({acc.source}) reaches "
                         f"P(all {run_steps:,} steps right) >= {args.target:g} at no k; give "
                         "--k N to project at N")
    result["plugged"] = project_plugged(acc, tok_s, result["machines"], plan.price, run_steps,
                                        args.target, given) if acc is not None and tok_s \
        else None
    if acc is not None and not tok_s:
        print("maker-local bench: no output tokens measured: give --tokens-per-second for "
              "the projection from the plugged-in accuracy", file=sys.stderr)
    result["paper"] = paper_projections()
    print(format_table(result))
    print(json.dumps(result, separators=(",", ":")))
    if args.out is not None:
        write_out(args, plan.settings, result, env)
    return 0


def measure(args: argparse.Namespace, plan: BenchPlan) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the backend, run the warm-up and the timed slice, stop it; the measured result
    and what computed it (engine, version, device: asked while the backend is up)."""
    from ..analysis.bench import cache_hit_rate, summarize
    from ..driver.slice import run_slice
    from ..backends import make_backend
    from ..driver.failures import Retrying
    from ..voting.schedule import VoteConfig
    from ..voting.seeds import Temperatures

    task, s, start, k = plan.task, plan.settings, plan.start, plan.k
    try:
        # failed requests are asked again with the same seeds, as in solve (waits count)
        backend = Retrying(make_backend(s.backend, task, s.options),
                           then="Nothing was written: run the bench again once this is fixed")
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        try:
            vote = VoteConfig(k=k, max_tokens=s.max_tokens, run_seed=args.seed,
                              temperatures=Temperatures(s.temperature_first, s.temperature),
                              check_legal=args.check_legal, max_samples=args.max_samples,
                              window=args.window or backend.default_window,
                              constrained=s.constrained, drafts=backend.uses_draft,
                              # random weights are never right: keep full rounds by staying
                              # on the draft instead of re-deriving it after every divergence
                              follow="draft" if s.options.dummy_weights else "vote",
                              rule=args.rule, prompts=backend.reads_prompts)
        except ValueError as e:
            raise UsageError(str(e)) from None
        print(f"maker-local bench: {args.warmup:,} warm-up + {args.steps:,} timed steps from "
              f"step {start:,} on {backend.name}, k={k}", file=sys.stderr)
        if args.warmup:
            run_slice(task, backend, vote, start, args.warmup, args.max_seconds)
        before = backend.metrics()  # vllm-http: the servers' /metrics (else None)
        timed = run_slice(task, backend, vote, start + args.warmup, args.steps,
                          args.max_seconds)
        hit = cache_hit_rate(before, backend.metrics()) if before is not None else None
        machines, unit = machine_count(args, backend)
        engine, version = engine_version(backend)
        env = {"engine": engine, "engine_version": version, "device": device_name(backend)}
        model = backend.describe().get("model") or backend.name  # the sim has no model
    finally:
        backend.close()
    return {"model": model, "backend": backend.name, "profile": s.profile_name, "k": k,
            "rule": args.rule, "task": task.describe(), "task_label": task.label(),
            "start": start, "warmup": args.warmup, "steps": args.steps,
            **summarize(timed, machines, plan.price, plan.run_steps),
            "prefix_cache_hit_rate": hit, "machines": machines, "machine_unit": unit}, env


def write_out(args: argparse.Namespace, settings: Settings, result: dict[str, Any],
              env: dict[str, Any]) -> None:
    """The result with metadata: what ran, where, when, from which commit, with which flags
    (as given, then as settled from the profile)."""
    from .. import __version__

    params = {**{k: v for k, v in vars(args).items() if k not in ("command", "api_key")},
              **settings.shown()}
    meta = {"model": result["model"], "backend": result["backend"], **env,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": git_commit(),
            "maker_local": __version__, "python": platform.python_version(),
            "params": params}
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**result, "metadata": meta}, indent=2, default=str))
    except OSError as e:
        raise UsageError(f"cannot write --out {args.out}: {e.strerror}") from None
    print(f"wrote {args.out}", file=sys.stderr)


def device_name(backend: Any) -> str:
    """Where the samples were computed: the GPU's name, the CPU's, or the remote servers."""
    if kind(backend.name).served:
        return f"remote: {len(backend.base_urls)} vLLM server(s)"
    torch = sys.modules.get("torch")  # only an engine that imported torch can be on a GPU
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    try:
        name = next(line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name} ({os.cpu_count()} cores)"


def engine_version(backend: Any) -> tuple[str, str | None]:
    """(engine, version): the sim is maker_local; a vLLM server says its own version;
    else vllm.__version__ (transformers' for hf) if importable."""
    from .. import __version__
    engine = kind(backend.name).engine
    if engine is None:
        return backend.name, __version__
    found = backend.version  # the in-process vLLM backend knows it
    try:
        if kind(backend.name).served:  # the server's version is the one that ran
            import httpx
            url = backend.base_urls[0].removesuffix("/v1") + "/version"
            found = httpx.get(url, timeout=5).json()["version"]
        elif found is None:
            found = importlib.import_module(engine).__version__
    except Exception:  # noqa: BLE001  (metadata is best effort)
        pass
    return engine, found


def git_commit(root: Path | None = None) -> str | None:
    """What `git rev-parse HEAD` prints, read from .git/ without running git; None if none."""
    git = (root or Path(__file__).resolve().parents[2]) / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None  # a detached HEAD is the commit itself
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():  # after `git gc`
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:  # not a git checkout (an installed wheel): no commit to report
        pass
    return None
