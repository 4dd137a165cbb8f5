"""The levers against correlated errors (voting/pool.py) on the command line: their flags,
the profile's [levers] table, and the pool of sources and engines they make.

A flag replaces the profile's value for that lever; `--no-levers` drops the profile's.
"""
from __future__ import annotations

import argparse
from typing import Any

from ..core.errors import UsageError
from . import checks

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


def build_pool(args: argparse.Namespace, settings: Any, task: Any, backend: Any,
               levers: dict[str, Any]) -> tuple[list[Any], Any, tuple[tuple[int, ...], ...]]:
    """The sources (without their plan: k is not known yet) and the pool's backend.

    Source 0 is the run's model; then its other renderings (prompt pool), the second
    opinions and the escalation sources, each with its own settings (`resolve(args,
    source=...)`). Returns (sources, PoolBackend, layout): layout = (rotation, escalate),
    for `make_pool`."""
    from ..backends import kind, make_backend
    from ..backends.pooled import PoolBackend
    from ..voting.pool import Source
    from ..voting.seeds import Temperatures
    from ..models.profiles import check_sizes
    from .common import make_task
    from .settings import resolve

    def source(s: Any, t: Any, engine: int, name: str) -> Source:
        return Source(name, t, Temperatures(s.temperature_first, s.temperature),
                      s.max_tokens, s.constrained, backends[engine].uses_draft,
                      backends[engine].describe())

    main_name = settings.profile_name or str(settings.model)
    backends: list[Any] = [backend]
    engines: dict[str, int] = {f"{main_name}@{list(settings.base_url) or ''}": 0}
    sources = [source(settings, task, 0, main_name)]
    engine_of = [0]
    rotation = [0]
    for style in levers.get("prompt_pool") or []:
        if style == task.style:
            raise UsageError(f"--prompt-pool {style}: that is the run's own rendering; name "
                             f"another of {', '.join(type(task).styles)}")
        sources.append(source(settings, make_task(args, style), 0, main_name))
        engine_of.append(0)
        rotation.append(len(sources) - 1)

    def add(spec: str) -> int:
        s = resolve(args, source=spec)
        t = make_task(args, s.style)
        if kind(s.backend).has_model:
            check_sizes(s.profile, [t])
        key = f"{s.profile_name}@{list(s.base_url) or ''}"
        if key not in engines:
            try:
                backends.append(make_backend(s.backend, t, s.options))
            except ValueError as e:
                raise UsageError(f"{spec}: {e}") from None
            engines[key] = len(backends) - 1
        sources.append(source(s, t, engines[key], s.profile_name))
        engine_of.append(engines[key])
        return len(sources) - 1

    for spec in levers.get("second_opinion") or []:
        rotation.append(add(spec))
    escalate = [add(spec) for spec in levers.get("escalate") or []]
    return sources, PoolBackend(backends, engine_of), (tuple(rotation), tuple(escalate))


def make_pool(layout: tuple[tuple[int, ...], ...], sources: list[Any],
              levers: dict[str, Any], k: int) -> Any:
    """The run's Pool once k is known (contest_after defaults to 3k)."""
    from ..voting.pool import Plan, Pool

    rotation, escalate = layout
    after = levers.get("contest_after") or 3 * k
    try:
        return Pool(tuple(sources), Plan(rotation, escalate, int(after)))
    except ValueError as e:
        raise UsageError(str(e)) from None
