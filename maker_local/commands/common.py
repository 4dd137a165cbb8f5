"""Flags shared by the commands that drive a model (solve, calibrate, bench) and the task
they name; how a profile fills in what the user left out is `settings.resolve`."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..backends import BACKENDS, add_backend_flags
from ..core.errors import UsageError
from . import checks

RULE_HELP = ("voting rule: ahead-by-k (MAKER's: sample until one answer leads every other by "
             "k votes) or first-to-k (until one answer has k votes); part of the run's "
             "identity, so --resume keeps it")  # solve's and bench's --rule


def add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", type=checks.text, default=None,
                   help=f"one of: {', '.join(BACKENDS)} (default: "
                   "the bundled step model in-process, on vLLM if installed, else hf)")
    p.add_argument("--profile", type=checks.text, default=None,
                   help="a model profile from models/ (model, prompt style, cap, temperatures)")
    p.add_argument("--style", type=checks.text, default=None,
                   help="prompt/answer style: paper or compact "
                   "(default: the profile's, else paper)")
    p.add_argument("--max-tokens", type=checks.at_least(1), default=None,
                   help="red-flag cap: samples that reach it are discarded (default: the "
                   "profile's, else 750 as in the paper)")
    p.add_argument("--temperature", type=checks.number(0), default=None,
                   help="temperature of later votes (default: the profile's, else 0.1)")
    p.add_argument("--temperature-first", type=checks.number(0), default=None,
                   help="temperature of each step's first vote (default 0 = greedy)")
    c = p.add_mutually_exclusive_group()
    c.add_argument("--unconstrained", dest="unconstrained", action="store_true", default=None,
                   help="send no output constraint (structured outputs off)")
    c.add_argument("--constrained", dest="unconstrained", action="store_false",
                   help="send the task's output constraint (the default unless the profile "
                   "says otherwise)")
    e = p.add_argument_group("engine backends (vllm, vllm-http, hf)")
    e.add_argument("--model", type=checks.text, default=None, help="model path or id (vllm, hf)")
    e.add_argument("--base-url", type=checks.url, action="append", default=None,
                   help="a vLLM server, e.g. http://127.0.0.1:8000/v1 (repeat for several)")
    e.add_argument("--api-key", type=checks.text, default=None, help="vllm-http: the servers' "
                   "key (vLLM's --api-key; default $MAKER_LOCAL_API_KEY, which ps does not "
                   "show); never printed or stored")
    e.add_argument("--api", choices=("chat", "completions"), default=None,
                   help="chat completions (default) or completions for models without a chat "
                   "template")
    e.add_argument("--concurrency", type=checks.at_least(1), default=None,
                   help="requests in flight per server (vllm-http, default 64)")
    e.add_argument("--request-timeout", type=checks.number(0, lo_open=True), default=None,
                   metavar="SECONDS",
                   help="vllm-http: a request not answered within this is asked again "
                   "(default 300; connecting: 10)")
    e.add_argument("--reasoning-effort", choices=("low", "medium", "high"), default=None,
                   help="gpt-oss's reasoning effort (default: the profile's)")
    from ..models.profiles import GRAMMAR_BACKENDS
    from ..models.reasoning import PARSERS
    e.add_argument("--reasoning-parser", choices=tuple(PARSERS), default=None,
                   help="vLLM's reasoning parser for a model that thinks before it answers: "
                   "the grammar applies after the thought, the answer is read only after "
                   "it (default: the profile's)")
    e.add_argument("--grammar-backend", choices=GRAMMAR_BACKENDS, default=None,
                   help="vllm: the structured-outputs engine (default: the profile's, else "
                   "xgrammar); a server's is set by maker-local serve")
    e.add_argument("--max-model-len", type=checks.at_least(1), default=None,
                   help="engine context length (default: the model's)")
    e.add_argument("--draft-sampling", dest="draft_sampling", action="store_true",
                   default=None, help="vllm, vllm-http: draw each step's votes against its "
                   "draft answer from one prefill (exact; over a server through prompt "
                   "log-probabilities; default: the profile's setting)")
    e.add_argument("--no-draft-sampling", dest="draft_sampling", action="store_false",
                   help="vllm, vllm-http: plain decoding for every sample")
    e.add_argument("--dummy-weights", action="store_true",
                   help="random weights of the real architecture (speed tests only)")
    add_backend_flags(p)  # each backend's own (the sim's --sim-*), registered with it


def make_task(args: argparse.Namespace, style: str | None = None, grid: bool = False) -> Any:
    """The task the command line names (--task and the task's own flags), in `style` (the
    task's first style by default), or with `grid` the list of its sizes that calibrate
    measures; a UsageError that says how to fix a bad value."""
    from ..tasks import task_class
    try:
        cls = task_class(args.task)
        style = style or cls.styles[0]
        if style not in cls.styles:
            raise ValueError(f"--style {style}: task {cls.name} writes "
                             f"{', '.join(cls.styles)}; choose one of them")
        return cls.grid(args, style) if grid else cls.from_args(args, style)
    except ValueError as e:
        raise UsageError(str(e)) from None


def task_styles(args: argparse.Namespace) -> tuple[str, ...]:
    """The prompt styles of the task the command line names (its first is the default)."""
    from ..tasks import task_class
    try:
        return tuple(task_class(args.task).styles)
    except ValueError as e:
        raise UsageError(str(e)) from None


def decide_k(args: argparse.Namespace, settings: Any, task: Any,
             steps: int) -> tuple[int, dict[str, Any]]:
    """k for a run of `steps` steps of `task` with `settings` (--k, --calibration, --target,
    --rule; `maker_local.analysis.accuracy`: where p comes from and which p picks k), as solve
    runs it and bench projects it, decided before any engine starts; says on stderr how k auto
    chose. Returns (k, how it was chosen, for the ledger)."""
    from ..analysis.accuracy import choose_k, model_accuracy
    from ..backends import own_accuracy

    known = model_accuracy(calibration=args.calibration, profile=settings.profile, task=task,
                           temperature=settings.temperature, backend=settings.backend,
                           told=own_accuracy(settings.backend, settings.options))
    got = choose_k(args.k, known, steps, args.target, args.rule, settings.backend)
    if got.message:
        print(got.message, file=sys.stderr)
    return got.k, dict(got.record)
