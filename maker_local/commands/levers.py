"""The levers against correlated errors (voting/pool.py) on the command line: their flags,
the profile's [levers] table, and the pool of sources and engines they make.

A flag replaces the profile's value for that lever; `--no-levers` drops the profile's.
"""
from __future__ import annotations

import argparse
from typing import Any

from ..core.errors import UsageError
from . import checks

# the settings resolve() fills from a profile: cleared before another profile fills them
_FROM_PROFILE = ("style", "max_tokens", "temperature", "temperature_first", "api",
                 "reasoning_effort", "reasoning_parser", "grammar_backend", "unconstrained",
                 "draft_sampling", "chat_template_kwargs", "dtype", "model", "base_url",
                 "backend")


def add_lever_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("levers against correlated errors (a model that is confidently "
                             "wrong on a few steps)")
    g.add_argument("--second-opinion", action="append", default=None, metavar="PROFILE[@URL]",
                   help="another model votes on every step, in turn with the run's model "
                   "(repeat for several); a step is decided only when the pooled votes decide "
                   "it AND each model's own top answer is the winner. @URL: a vLLM server "
                   "that serves it (default: in this process)")
    g.add_argument("--prompt-pool", action="append", default=None, metavar="STYLE",
                   help="the run's model also votes in this rendering of the prompt, in turn "
                   "(repeat for several)")
    g.add_argument("--escalate", action="append", default=None, metavar="PROFILE[@URL]",
                   help="a contested step (undecided after --contest-after votes) is decided "
                   "by this model's votes alone, at the run's rule and k")
    g.add_argument("--contest-after", type=checks.at_least(1), default=None, metavar="N",
                   help="valid votes after which an undecided step is contested (default 3k)")
    g.add_argument("--no-levers", action="store_true",
                   help="leave out the levers the profile names ([levers])")


def lever_settings(args: argparse.Namespace, profile: Any) -> dict[str, Any] | None:
    """{second_opinion, prompt_pool, escalate, contest_after}: the flags over the profile's
    [levers]; None when the run has no lever."""
    have = {} if getattr(args, "no_levers", False) or profile is None else \
        dict(getattr(profile, "levers", {}) or {})
    for key in ("second_opinion", "prompt_pool", "escalate", "contest_after"):
        value = getattr(args, key, None)
        if value is not None:
            have[key] = value
    if not (have.get("second_opinion") or have.get("prompt_pool") or have.get("escalate")):
        if have.get("contest_after") is not None and getattr(args, "contest_after", None):
            raise UsageError("--contest-after applies to a run with a lever: add "
                             "--second-opinion, --prompt-pool or --escalate")
        return None
    return have


def _source_args(args: argparse.Namespace, spec: str) -> argparse.Namespace:
    """The run's options for another profile's source: PROFILE or PROFILE@URL."""
    from .common import resolve

    name, _, url = spec.partition("@")
    if not name:
        raise UsageError(f"{spec!r}: name a profile (models/*.toml), e.g. hanoi-think or "
                         "hanoi-think@http://127.0.0.1:8001/v1")
    a = argparse.Namespace(**vars(args))
    for key in _FROM_PROFILE:
        setattr(a, key, None)
    a.profile = name
    if url:
        try:
            a.base_url = [checks.url(url)]
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"{spec!r}: {e}") from None
    resolve(a)
    return a


def build_pool(args: argparse.Namespace, profile: Any, task: Any, backend: Any,
               levers: dict[str, Any]) -> tuple[list[Any], Any]:
    """The sources (without their plan: k is not known yet) and the pool's backend.

    Source 0 is the run's model; then its other renderings (prompt pool), the second
    opinions and the escalation sources. Returns (sources, PoolBackend) and sets
    args.pool_layout = (rotation, escalate) for `plan`."""
    from ..backends import BackendOptions, kind, make_backend
    from ..backends.pooled import PoolBackend
    from ..voting.pool import Source
    from ..voting.seeds import Temperatures
    from ..models.profiles import check_sizes
    from .common import make_task

    def source(a: argparse.Namespace, t: Any, engine: int, name: str) -> Source:
        return Source(name, t, Temperatures(a.temperature_first, a.temperature),
                      a.max_tokens, not a.unconstrained,
                      bool(getattr(backends[engine], "uses_draft", False)),
                      backends[engine].describe())

    main_name = getattr(profile, "name", None) or str(args.model)
    backends: list[Any] = [backend]
    engines: dict[str, int] = {f"{main_name}@{args.base_url or ''}": 0}
    sources = [source(args, task, 0, main_name)]
    engine_of = [0]
    rotation = [0]
    for style in levers.get("prompt_pool") or []:
        if style == task.style:
            raise UsageError(f"--prompt-pool {style}: that is the run's own rendering; name "
                             f"another of {', '.join(type(task).styles)}")
        sources.append(source(args, make_task(args, style), 0, main_name))
        engine_of.append(0)
        rotation.append(len(sources) - 1)

    def add(spec: str) -> int:
        a = _source_args(args, spec)
        t = make_task(a, a.style)
        if kind(a.backend).has_model:
            from ..models.profiles import load_profile
            check_sizes(load_profile(a.profile), [t])
        key = f"{a.profile}@{a.base_url or ''}"
        if key not in engines:
            try:
                backends.append(make_backend(a.backend, t, BackendOptions.from_args(a)))
            except ValueError as e:
                raise UsageError(f"{spec}: {e}") from None
            engines[key] = len(backends) - 1
        sources.append(source(a, t, engines[key], a.profile))
        engine_of.append(engines[key])
        return len(sources) - 1

    for spec in levers.get("second_opinion") or []:
        rotation.append(add(spec))
    escalate = [add(spec) for spec in levers.get("escalate") or []]
    args.pool_layout = (tuple(rotation), tuple(escalate))
    return sources, PoolBackend(backends, engine_of)


def make_pool(args: argparse.Namespace, sources: list[Any], levers: dict[str, Any],
              k: int) -> Any:
    """The run's Pool once k is known (contest_after defaults to 3k)."""
    from ..voting.pool import Plan, Pool

    rotation, escalate = args.pool_layout
    after = levers.get("contest_after") or 3 * k
    try:
        return Pool(tuple(sources), Plan(rotation, escalate, int(after)))
    except ValueError as e:
        raise UsageError(str(e)) from None
