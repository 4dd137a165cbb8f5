"""Pure task definitions, as plug-ins (see base.py).

`TASKS` maps a built-in task's name to its lazy "module:Class"; `task_class` also finds tasks
of other packages: an entry point of group `maker_local.tasks`, or a module path
(`mypkg.tasks:MyTask`), so a user adds a task without editing maker_local.
"""
from __future__ import annotations

import importlib
from typing import Any

from ..core.errors import unknown
from .base import Constraint, Flag, Parsed, Task, TaskBase
from .hanoi import Hanoi

TASKS: dict[str, str] = {
    "hanoi": "maker_local.tasks.hanoi:Hanoi",
    "multiply": "maker_local.tasks.multiply:Multiply",
}
ENTRY_POINTS = "maker_local.tasks"


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def available() -> list[str]:
    """Names of the built-in tasks and of the installed plug-ins."""
    return list(TASKS) + sorted(set(_entry_points()) - set(TASKS))


def task_class(spec: str) -> type:
    """The task class `spec` names: a built-in, an installed entry point, or
    'module.path:Class'. A ValueError that says what exists otherwise."""
    if spec in TASKS:
        module, cls = TASKS[spec].split(":")
        return getattr(importlib.import_module(module), cls)
    if ":" in spec:
        module, _, cls = spec.partition(":")
        try:
            got = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--task {spec}: cannot load {cls!r} from module {module!r} ({e}); "
                             "give module.path:Class of an importable module (PYTHONPATH)"
                             ) from None
        got._source = spec  # recorded in the run, so verify and --resume find it again
        return got
    eps = _entry_points()
    if spec in eps:
        return eps[spec].load()
    known = available()
    raise ValueError(f"{unknown('task', spec, known)}, or module.path:Class of your own")


def from_describe(d: dict[str, Any]) -> Any:
    """A task rebuilt from its `describe()` (the run's identity in a ledger)."""
    return task_class(d.get("source") or d["task"]).from_describe(d)


__all__ = ["Constraint", "Flag", "Parsed", "Task", "TaskBase", "TASKS", "Hanoi", "available",
           "task_class", "from_describe"]
