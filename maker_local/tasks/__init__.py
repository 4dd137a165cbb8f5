"""Pure task definitions. `TASKS` maps a CLI name to a builder."""
from .base import Constraint, Flag, Parsed, Task
from .hanoi import Hanoi

TASKS = {"hanoi": Hanoi}

__all__ = ["Constraint", "Flag", "Parsed", "Task", "TASKS", "Hanoi"]
