"""Where samples come from. `BACKENDS` maps a CLI name to a backend's `Kind`: its lazy
"module:factory" entry (heavy engines, torch, vllm, transformers, outlines, are imported only
when chosen) and what the commands need to know of it before one is built. Adding a backend
is one module with a `from_options(task, options)` and one line here; no code outside this
folder compares backend names.

What a built backend is and does (the `Backend` protocol of `core/types.py`): `name`,
`sample(requests)`, `describe()` (its part of a run's identity), `close()`, and what it has
of `default_window` (steps voted at once), `uses_draft`, `version`, `gpu`, `retry_for`,
`metrics()`, `take_recovered()` and `take_endpoint_counts()` (a backend over servers): each
declared on the protocol with the value of a backend that lacks it.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from ..core.errors import unknown
from .options import BackendOptions


@dataclass(frozen=True)
class Kind:
    """What a backend is, known from its name alone."""
    entry: str  # "module:factory": factory(task, options) builds one
    model: str  # "none": no model (no sizes, cards or prompts); "local": weights this
    # process loads from --model; "served": a server's model, reached over HTTP
    engine: str | None = None  # the package whose version a bench reports (None: ours)
    dry_run: str | None = None  # "module:function": what --dry-run shows of its engine
    # "module:function": the per-sample accuracy it knows of itself from its options (the
    # sim's), read before one is built: --k auto is decided before an engine starts
    accuracy: str | None = None
    # "module:function": adds the backend's own flags to a command's parser (the sim's
    # --sim-*); the flags every engine shares (--model, --base-url, ...) are the commands'
    flags: str | None = None

    @property
    def has_model(self) -> bool:
        """A real model: its sizes are checked and its card read."""
        return self.model != "none"

    @property
    def local(self) -> bool:
        """Loads a model in this process (--model, a context to check, the profile's env)."""
        return self.model == "local"

    @property
    def served(self) -> bool:
        return self.model == "served"


BACKENDS: dict[str, Kind] = {
    "sim": Kind("maker_local.backends.sim:from_options", "none",
                accuracy="maker_local.backends.sim:accuracy",
                flags="maker_local.backends.sim:add_flags"),
    "vllm": Kind("maker_local.backends.vllm:from_options", "local", "vllm",
                 dry_run="maker_local.backends.vllm:dry_run"),
    "vllm-http": Kind("maker_local.backends.vllm_http:from_options", "served", "vllm"),
    "hf": Kind("maker_local.backends.hf:from_options", "local", "transformers"),
}
# the embedded default's engines, in order of preference, when no backend is named
LOCAL_PREFERENCE = (("vllm", ("vllm",)), ("hf", ("transformers", "outlines")))
SERVED_DEFAULT = "vllm-http"


def kind(name: str) -> Kind:
    """The kind of backend `name`; a ValueError names a wrong name with the near miss."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(unknown("backend", name, list(BACKENDS))) from None


def default_backend(served: bool) -> str | None:
    """The backend when none is named: over HTTP with servers given, else the first local
    engine that is installed; None when there is none."""
    if served:
        return SERVED_DEFAULT
    for name, modules in LOCAL_PREFERENCE:
        if all(importlib.util.find_spec(m) is not None for m in modules):
            return name
    return None


def _call(entry: str | None, arg: Any) -> Any:
    if entry is None:
        return None
    module, func = entry.split(":")
    return getattr(importlib.import_module(module), func)(arg)


def add_backend_flags(parser: Any) -> None:
    """Every backend's own flags, as its `Kind.flags` adds them (an argparse parser)."""
    for k in BACKENDS.values():
        _call(k.flags, parser)


def dry_run(name: str, options: BackendOptions) -> dict[str, Any] | None:
    """What backend `name` would start with `options` (for --dry-run), or None."""
    return _call(kind(name).dry_run, options)


def own_accuracy(name: str, options: BackendOptions) -> float | None:
    """The per-sample accuracy backend `name` knows of itself with `options` (the sim's
    1 - error), without building it; None for a real model (its card or a calibration say)."""
    return _call(kind(name).accuracy, options)


def make_backend(name: str, task: Any, options: BackendOptions) -> Any:
    """The backend `name` for `task`, built from `options`; a ValueError names a wrong name
    (with the fix) or a setting the backend cannot run with."""
    module, func = kind(name).entry.split(":")
    return getattr(importlib.import_module(module), func)(task, options)
