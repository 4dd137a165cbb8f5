"""Where samples come from. `BACKENDS` maps a CLI name to a lazy "module:factory" entry so
heavy engines (torch, vllm, transformers, outlines) are imported only when chosen."""
from __future__ import annotations

import importlib
from typing import Any

from ..core.errors import unknown
from .options import BackendOptions

BACKENDS: dict[str, str] = {
    "sim": "maker_local.backends.sim:from_options",
    "vllm": "maker_local.backends.vllm:from_options",
    "vllm-http": "maker_local.backends.vllm_http:from_options",
    "hf": "maker_local.backends.hf:from_options",
}


def make_backend(name: str, task: Any, options: BackendOptions) -> Any:
    """The backend `name` for `task`, built from `options`; a ValueError names a wrong name
    (with the fix) or a setting the backend cannot run with."""
    if name not in BACKENDS:
        raise ValueError(unknown("backend", name, list(BACKENDS)))
    module, func = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), func)(task, options)
