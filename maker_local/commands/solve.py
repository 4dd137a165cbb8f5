"""`maker-local solve`: run MAKER on a task end to end."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..backends import BACKENDS, unknown


def add_cli_args(p: argparse.ArgumentParser) -> None:
    from ..tasks import TASKS
    p.add_argument("--task", default="hanoi", help=f"one of: {', '.join(TASKS)}")
    p.add_argument("--disks", type=int, default=10, help="Hanoi disks (2^n - 1 steps)")
    p.add_argument("--backend", default="sim", help=f"one of: {', '.join(BACKENDS)}")
    p.add_argument("--k", default="3", help="votes a key must lead by, or 'auto' (k_min for "
                   "--target from the model's measured accuracy)")
    p.add_argument("--target", type=float, default=0.95,
                   help="success probability of the whole run that --k auto aims for")
    p.add_argument("--schedule", default="rounds", help="rounds (speculative, parallel over a "
                   "draft) or sequential (true chaining)")
    p.add_argument("--window", type=int, default=None, help="steps voted at once in rounds "
                   "(default: the backend's, e.g. 131072 for sim, 4096 for vLLM)")
    p.add_argument("--style", default="paper", help="prompt/answer style: paper or compact "
                   "(the bundled step model's)")
    p.add_argument("--unconstrained", action="store_true",
                   help="send no output constraint (structured outputs off)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="where the ledger and report go (default runs/<task>-<disks>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--seed", type=int, default=0, help="run seed (0..32767)")
    p.add_argument("--temperature", type=float, default=0.1, help="temperature of later votes")
    p.add_argument("--temperature-first", type=float, default=0.0,
                   help="temperature of each step's first vote (0 = greedy, as in the paper)")
    p.add_argument("--max-tokens", type=int, default=750,
                   help="red-flag cap: samples that reach it are discarded")
    p.add_argument("--rules", action="store_true",
                   help="red-flag answers that break the task's rules (off in the paper)")
    p.add_argument("--max-samples", type=int, default=1000,
                   help="stop and report a step that is undecided after this many samples")
    p.add_argument("--keep-text", choices=("some", "all"), default="some",
                   help="raw text kept: flagged, losing and 1%% of winning samples, or all")
    e = p.add_argument_group("engine backends (vllm, vllm-http, hf)")
    e.add_argument("--model", default=None, help="model path or id (vllm, hf)")
    e.add_argument("--base-url", action="append", default=None,
                   help="a vLLM server, e.g. http://127.0.0.1:8000/v1 (repeat for several)")
    e.add_argument("--api", choices=("chat", "completions"), default=None,
                   help="chat completions (default) or completions for models without a chat "
                   "template")
    e.add_argument("--concurrency", type=int, default=None,
                   help="requests in flight per server (vllm-http, default 64)")
    e.add_argument("--reasoning-effort", default=None, help="low|medium|high (gpt-oss)")
    e.add_argument("--max-model-len", type=int, default=None, help="engine context length")
    e.add_argument("--dummy-weights", action="store_true",
                   help="random weights of the real architecture (speed tests only)")
    g = p.add_argument_group("sim backend")
    g.add_argument("--sim-error", type=float, default=None,
                   help="mean per-sample error among valid samples (default 0.0022)")
    g.add_argument("--sim-valid", type=float, default=None,
                   help="share of well-formed samples (default 0.97)")
    g.add_argument("--sim-spread", type=float, default=None,
                   help="per-step difficulty spread, 0..1 (default 1)")
    g.add_argument("--sim-wrong", type=int, default=None,
                   help="distinct wrong answers per step; the first is the most frequent "
                   "(default 3)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def _choose(kind: str, name: str, known: list[str]) -> str:
    if name not in known:
        raise UsageError(unknown(kind, name, known))
    return name


def build_spec(args: argparse.Namespace) -> Any:
    from ..engine.scaling import k_min
    from ..engine.schedule import SCHEDULES, VoteConfig
    from ..engine.seeds import MAX_RUN_SEED, Temperatures
    from ..backends import make_backend
    from ..run import RunSpec
    from ..tasks import TASKS

    _choose("task", args.task, list(TASKS))
    _choose("backend", args.backend, list(BACKENDS))
    _choose("schedule", args.schedule, list(SCHEDULES))
    if not 0 <= args.seed <= MAX_RUN_SEED:
        raise UsageError(f"--seed must be in 0..{MAX_RUN_SEED}")
    if args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1")
    if args.window is not None and args.window < 1:
        raise UsageError("--window must be at least 1")
    try:
        task = TASKS[args.task](args.disks, style=args.style)
        backend = make_backend(args.backend, task, vars(args))
    except ValueError as e:
        raise UsageError(str(e)) from None
    window = args.window or getattr(backend, "default_window", 4096)
    extra: dict[str, Any] = {}
    if args.k == "auto":
        p = getattr(backend, "accuracy", lambda: None)()
        if p is None:
            raise UsageError(f"--k auto needs a measured accuracy for backend {args.backend}; "
                             "give --k N, or calibrate the model first")
        try:
            k = k_min(p, task.num_steps(), args.target)
        except ValueError as e:
            raise UsageError(str(e)) from None
        extra["k_auto"] = {"p": p, "steps": task.num_steps(), "target": args.target, "k": k}
        print(f"k auto: k={k} is the smallest k with P(all {task.num_steps():,} steps right) >= "
              f"{args.target} at per-sample accuracy p={p:.4f}", file=sys.stderr)
    else:
        try:
            k = int(args.k)
        except ValueError:
            raise UsageError(f"--k must be a positive integer or 'auto' (got {args.k!r})") \
                from None
        if k < 1:
            raise UsageError(f"--k must be at least 1 (got {k})")
    try:
        vote = VoteConfig(k=k, max_tokens=args.max_tokens, run_seed=args.seed,
                          temperatures=Temperatures(args.temperature_first, args.temperature),
                          rules=args.rules, max_samples=args.max_samples, window=window,
                          keep_text=args.keep_text, constrained=not args.unconstrained)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return RunSpec(task, backend, vote, args.schedule, extra)


def main(args: argparse.Namespace) -> int:
    from ..engine.schedule import StuckStep
    from ..report import format_report
    from ..run import solve
    from ..store import LedgerError

    spec = build_spec(args)
    run_dir = args.run_dir or Path("runs") / f"{args.task}-{args.disks}"
    try:
        report = solve(spec, run_dir, resume=args.resume, progress=not args.quiet)
    except LedgerError as e:
        raise UsageError(str(e)) from None
    except StuckStep as e:
        print(f"maker-local: {e}. Its votes are in the ledger: resume with --resume and a "
              "larger --max-samples or a larger --k.", file=sys.stderr)
        return 3
    finally:
        spec.backend.close()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    print(f"ledger and report: {run_dir}", file=sys.stderr)
    return 0 if report["steps"]["errors"] == 0 else 1
