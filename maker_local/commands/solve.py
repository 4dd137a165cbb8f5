"""`maker-local solve`: run MAKER on a task end to end."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import dry_run, kind
from ..core.errors import UsageError
from ..voting.rules import DEFAULT_RULE
from . import checks
from .common import RULE_HELP, add_backend_args, decide_k, make_task
from .levers import add_lever_args, build_pool, lever_settings, make_pool
from .settings import Settings, resolve


TASK_PURPOSE = "solve"  # cli adds --task and the task's own flags


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = checks.HelpFormatter
    from ..voting.seeds import MAX_SAMPLES_PER_STEP
    p.add_argument("--steps", type=step_range, default=None, metavar="A:B",
                   help="certify only steps A..B-1 of the run ('A:B', 'A:' or ':B', as a "
                   "Python slice), starting from the reference input of step A; its own "
                   "ledger and report (default run dir runs/<task>-<size>-A-B)")
    p.add_argument("--k", type=checks.k_or_auto(MAX_SAMPLES_PER_STEP), default=None,
                   help="votes a key must lead by, or 'auto' (k_min for "
                   "--target from the model's measured accuracy). Default: auto when the "
                   "accuracy was measured (the bundled model's card, --calibration), else 3")
    p.add_argument("--rule", default=DEFAULT_RULE, metavar="RULE",
                   help=RULE_HELP)
    p.add_argument("--target", type=checks.fraction(), default=0.95,
                   help="success probability of the whole run that --k auto aims for")
    p.add_argument("--calibration", type=checks.existing_file, default=None,
                   help="a calibration JSON (maker-local calibrate) for --k auto")
    p.add_argument("--schedule", default="rounds", help="rounds (speculative, parallel over a "
                   "draft) or sequential (true chaining)")
    p.add_argument("--window", type=checks.at_least(1), default=None,
                   help="steps voted at once in rounds "
                   "(default: the backend's, e.g. 131072 for sim, 4096 for vLLM)")
    p.add_argument("--run-dir", type=checks.path, default=None,
                   help="where the ledger and report go (default runs/<task>-<size>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--seed", type=int, default=0, help="run seed (0..32767)")
    p.add_argument("--check-legal", action="store_true",
                   help="red-flag answers that break the task's rules, e.g. an illegal move "
                   "(off in the paper; not the voting --rule)")
    p.add_argument("--rules", action=checks.Renamed, dest="check_legal", new="--check-legal")
    p.add_argument("--max-samples", type=checks.at_least(1, MAX_SAMPLES_PER_STEP), default=1000,
                   help="stop and report a step that is undecided after this many samples")
    p.add_argument("--keep-text", choices=("some", "all"), default="some",
                   help="raw text kept: flagged, losing and 1%% of winning samples, or all")
    p.add_argument("--price-per-hour", type=checks.number(0), default=None,
                   help="USD per machine-hour for the cost in the progress bar (default: the "
                   "profile's usd_per_gpu_hour x servers)")
    p.add_argument("--metrics-port", type=checks.port, default=None,
                   help="Prometheus counters on 127.0.0.1:PORT/metrics (off by default)")
    add_backend_args(p)
    add_lever_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show the engine's logs here (default: in <run-dir>/engine.log)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--dry-run", action="store_true",
                   help="check the options and print the resolved settings (and, for the "
                   "vllm backend, the engine's configuration) as JSON; start nothing")


def step_range(text: str) -> tuple[int | None, int | None]:
    """'A:B' -> (A, B); either end may be left out. Checked against the task later."""
    a, sep, b = text.partition(":")
    try:
        if not sep:
            raise ValueError
        lo = int(a) if a.strip() else None
        hi = int(b) if b.strip() else None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a step range: write A:B (steps A..B-1), A: or :B") from None
    if (lo is not None and lo < 0) or (hi is not None and hi < 1) or \
            (lo is not None and hi is not None and hi <= lo):
        raise argparse.ArgumentTypeError(
            f"{text!r}: need 0 <= A < B (steps A..B-1, counted from 0)")
    return lo, hi


def slice_of(args: argparse.Namespace, total: int) -> tuple[int, int] | None:
    """The run's slice (start, stop) from --steps, checked against the task's length."""
    if args.steps is None:
        return None
    lo, hi = args.steps
    lo, hi = lo or 0, total if hi is None else hi
    if hi > total or lo >= hi:
        raise UsageError(f"--steps {lo}:{hi} is outside the run's {total:,} steps "
                         f"(0..{total - 1:,}): choose A < B <= {total}")
    return lo, hi


def _choose(kind: str, name: str, known: list[str]) -> str:
    from ..core.errors import unknown
    if name not in known:
        raise UsageError(unknown(kind, name, known))
    return name


def run_price(args: argparse.Namespace, settings: Settings) -> dict[str, float]:
    """What the run costs: machine time (local) or tokens (API), for the progress bar."""
    if args.price_per_hour is not None:
        return {"usd_per_hour": args.price_per_hour}
    price = getattr(settings.profile, "price", None)
    if price is None:
        return {}
    if price.usd_per_gpu_hour:
        servers = len(settings.base_url) or 1
        return {"usd_per_hour": price.usd_per_gpu_hour * servers}
    return {k: v for k, v in (("usd_per_m_in", price.usd_per_m_in),
                              ("usd_per_m_out", price.usd_per_m_out)) if v}


@dataclass(frozen=True)
class RunPlan:
    """What a solve will run, every option checked and nothing started: `--dry-run` prints
    it (`config`), a run starts from it (`start`). The task is built once, here."""
    task: Any
    settings: Settings
    steps: tuple[int, int] | None  # the slice, or None for the whole task
    levers: dict[str, Any] | None
    k: int
    k_record: dict[str, Any]  # how k was chosen (the ledger keeps it)
    run_dir: Path

    def config(self, args: argparse.Namespace) -> dict[str, Any]:
        """What `--dry-run` prints: the task, the settings, k, rule and schedule, the
        levers and, for a backend that can tell, its engine's configuration."""
        s = self.settings
        out: dict[str, Any] = {"task": self.task.describe(), "profile": s.profile_name,
                               **s.shown(), "k": self.k, "rule": args.rule,
                               "schedule": args.schedule}
        engine = dry_run(s.backend, s.options)
        if engine is not None:
            out[s.backend] = engine
        return {**out, "levers": self.levers}


def plan_run(args: argparse.Namespace) -> RunPlan:
    """Check every option and settle what will run, starting nothing (no engine, no file)."""
    from ..voting.rules import RULES
    from ..voting.schedule import SCHEDULES
    from ..voting.seeds import MAX_RUN_SEED

    if args.run_dir is not None:  # a used one is refused first, before anything else
        checks.check_run_dir(args.run_dir, args.resume)
    if args.k not in (None, "auto") and int(args.k) > args.max_samples:
        raise UsageError(f"--k {args.k} needs at least {args.k} samples per step, more than "
                         f"--max-samples {args.max_samples}: raise --max-samples or lower --k")
    _choose("schedule", args.schedule, list(SCHEDULES))
    _choose("voting rule", args.rule, list(RULES))
    if not 0 <= args.seed <= MAX_RUN_SEED:
        raise UsageError(f"--seed must be in 0..{MAX_RUN_SEED}")
    if args.window is not None and args.window < 1:
        raise UsageError("--window must be at least 1")
    settings = resolve(args)
    if settings.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1")
    task = make_task(args, settings.style)
    if kind(settings.backend).has_model:  # the sizes the model supports
        from ..models.profiles import check_sizes
        check_sizes(settings.profile, [task])
    steps = slice_of(args, task.num_steps())  # refused before an engine starts
    levers = lever_settings(args, settings.profile)
    try:
        k, record = decide_k(args, settings, task, task.num_steps())
    except UsageError as e:
        if levers is None:
            raise
        raise UsageError(f"{e} (with levers, k auto reads the run's own model's card: "
                         "give --k N)") from None
    run_dir = args.run_dir
    if run_dir is None:
        run_dir = Path("runs") / (f"{task.name}-{task.size}" + (
            f"-{args.steps[0] or 0}-{args.steps[1] if args.steps[1] is not None else 'end'}"
            if args.steps else ""))
        checks.check_run_dir(run_dir, args.resume)
    return RunPlan(task, settings, steps, levers, k, record, run_dir)


def build_spec(args: argparse.Namespace, plan: RunPlan, logs: Any = None) -> Any:
    """Start what `plan` says: the backend (and a pool's), k, the vote; the run's spec."""
    from ..backends import make_backend
    from ..driver.run import RunSpec
    from ..voting.schedule import VoteConfig
    from ..voting.seeds import Temperatures

    task, s, levers = plan.task, plan.settings, plan.levers
    if logs is not None:
        logs.start()  # every option is checked: the engine's output goes to its log
    try:
        backend = make_backend(s.backend, task, s.options)
    except ValueError as e:
        raise UsageError(str(e)) from None
    sources: list[Any] = []
    if levers is not None:
        try:
            sources, backend, layout = build_pool(args, s, task, backend, levers)
        except BaseException:
            backend.close()
            raise
    if logs is not None:
        logs.terminal()
    k, extra = plan.k, dict(plan.k_record)
    pool = make_pool(layout, sources, levers, k) if levers is not None else None
    if s.profile is not None:
        extra["profile"] = s.profile.name
    extra["price"] = run_price(args, s)
    window = args.window or backend.default_window
    try:
        vote = VoteConfig(k=k, max_tokens=s.max_tokens, run_seed=args.seed,
                          temperatures=Temperatures(s.temperature_first, s.temperature),
                          check_legal=args.check_legal, max_samples=args.max_samples,
                          window=window, keep_text=args.keep_text, constrained=s.constrained,
                          drafts=backend.uses_draft, rule=args.rule,
                          prompts=backend.reads_prompts, pool=pool)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return RunSpec(task, backend, vote, args.schedule, extra, plan.steps)


def main(args: argparse.Namespace) -> int:
    # everything that can be refused is refused before a file is made or an engine starts
    plan = plan_run(args)
    run_dir = plan.run_dir
    if args.dry_run:
        print(json.dumps(plan.config(args), indent=2, default=str))
        return 0
    metrics = None
    if args.metrics_port is not None:
        from ..driver.metrics import Metrics
        try:
            metrics = Metrics()
            metrics.start(args.metrics_port)
        except (ImportError, OSError) as e:
            raise UsageError(f"--metrics-port {args.metrics_port}: {e}") from None
    from ..driver.enginelog import EngineLog
    # an engine in this process: its output goes to the run's engine.log
    in_process = kind(plan.settings.backend).local
    logs = EngineLog(run_dir / "engine.log" if in_process and not args.verbose else None)
    try:
        return _run(args, plan, run_dir, metrics, logs)
    finally:
        logs.stop()


def _run(args: argparse.Namespace, plan: RunPlan, run_dir: Path, metrics: Any,
         logs: Any = None) -> int:
    from ..driver.report import format_report
    from ..driver.failures import RunStopped
    from ..driver.run import solve
    from ..voting.pool import Contested
    from ..voting.schedule import StuckStep
    from ..store import LedgerError

    spec = build_spec(args, plan, logs)
    try:
        report = solve(spec, run_dir, resume=args.resume, progress=not args.quiet,
                       on_round=metrics.on_round if metrics else None)
    except LedgerError as e:
        raise UsageError(str(e)) from None
    except StuckStep as e:
        print(f"maker-local: {e}. Its votes are in the ledger: resume with --resume and a "
              "larger --max-samples or a larger --k.", file=sys.stderr)
        return 3
    except Contested as e:  # resuming asks the same sources again: no use
        print(f"maker-local: {e}", file=sys.stderr)
        return 4
    except RunStopped as e:
        print(f"maker-local: {e}", file=sys.stderr)
        return 3
    finally:
        spec.backend.close()
        if metrics:
            metrics.stop()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    print(f"ledger and report: {run_dir}", file=sys.stderr)
    return 0 if report["steps"]["errors"] == 0 else 1
