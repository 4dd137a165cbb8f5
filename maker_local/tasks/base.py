"""The contract every MDAP task implements, and `TaskBase`, its defaults.

A task is pure: it knows its states, its prompts, how to read an answer and what the right
answer is (when it has a reference). It knows nothing of backends, voting or storage.

A task is a plug-in: a class registered by name (`tasks.TASKS`), by an entry point of group
`maker_local.tasks`, or named by module path (`--task mypkg.tasks:MyTask`). The class owns
what the commands need to know about it, so nothing outside `tasks/` knows a task's words:
its CLI flags (`add_cli_args`, read back by `from_args`), its sizes for `calibrate` (`grid`),
its label in reports (`label`), its prompt formats (`styles`), and the sim's hints (`text`,
`wrong_answers`, `malformed`). `describe()` is the task's identity in a ledger; `from_describe`
rebuilds it from that (verify, resume).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..core.types import Constraint  # noqa: F401  (part of the task contract)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed answer: `key` is its canonical vote key; `answer` the task's own object."""

    key: str
    answer: Any


@dataclass(frozen=True, slots=True)
class Flag:
    """A red flag raised while reading a sample; `reason` is one of REASONS."""

    reason: str
    detail: str = ""


# Red-flag reasons, in the order reports list them.
REASONS = ("length", "parse", "rule", "error")


@runtime_checkable
class Task(Protocol):
    """One MDAP task: steps with inputs x_i, answers a_i, and the next input x_{i+1}."""

    name: str

    def num_steps(self) -> int: ...
    def initial(self) -> Any: ...
    def render(self, x: Any) -> list[dict[str, str]]: ...
    def constraint(self, x: Any) -> Constraint: ...
    def parse(self, text: str, x: Any, repair: bool = False) -> Parsed | Flag: ...
    def check_rules(self, x: Any, answer: Any) -> Flag | None: ...
    def next_input(self, x: Any, answer: Any) -> Any: ...
    def reference(self, x: Any) -> Parsed | None: ...
    def answer_from_key(self, key: str) -> Any: ...
    def text(self, answer: Any) -> str: ...
    def wrong_answers(self, x: Any, count: int) -> list[Any]: ...
    def input_at(self, step: int) -> Any | None: ...
    def describe(self) -> dict[str, Any]: ...
    def malformed(self, text: str, u: float) -> str: ...
    def label(self) -> str: ...


class TaskBase:
    """Defaults for a task plug-in; subclasses set `name`, `styles` and implement the task.

    Constructor keyword arguments are the task's parameters: `params()` returns them (they go
    into `describe()`, the run's identity) and `from_describe` passes them back.
    """

    name = "task"
    styles: tuple[str, ...] = ("plain",)  # prompt formats; the first is the default
    size_label = "steps"  # what `size` counts, for reports and model cards
    size_flag: str | None = None  # the flag that sets the size, for messages (Hanoi: --disks)
    sim_prose = ""  # what the sim writes before an answer (a model that explains itself)
    default_profile: str | None = None  # the bundled model that runs when nothing is named

    # ------------------------------------------------------------------ the class: CLI, grid
    @classmethod
    def add_cli_args(cls, p: Any, purpose: str) -> None:
        """Add the task's own flags to a command's parser (`purpose`: solve, bench or
        calibrate; calibrate takes sizes to sweep)."""

    @classmethod
    def from_args(cls, args: Any, style: str) -> "TaskBase":
        """The task the flags of `add_cli_args` describe (ValueError: a bad value, said so
        that the user can fix it)."""
        return cls(style=style)

    @classmethod
    def grid(cls, args: Any, style: str) -> list["TaskBase"]:
        """The task sizes `calibrate` measures, one task each (default: the one task)."""
        return [cls.from_args(args, style)]

    @classmethod
    def from_describe(cls, d: dict[str, Any]) -> "TaskBase":
        return cls(**{k: v for k, v in d.items() if k not in ("task", "steps", "source")})

    # ------------------------------------------------------------------------ the instance
    def params(self) -> dict[str, Any]:
        return {"style": getattr(self, "style", self.styles[0])}

    def describe(self) -> dict[str, Any]:
        d = {"task": self.name, **self.params(), "steps": self.num_steps()}
        source = getattr(type(self), "_source", None)
        if source:  # loaded by module path: how verify and resume find the class again
            d["source"] = source
        return d

    @property
    def size(self) -> int:
        """The task's size (Hanoi: disks): model cards and profiles key accuracy by it."""
        return self.num_steps()

    def label(self) -> str:
        return f"{self.size:,} {self.size_label}"

    def class_name(self, row: dict[str, Any]) -> str:
        """A class of steps in a model card's class table (card_classes.json rows)."""
        return f"{self.label()}, {row.get('kind', 'class')} {row.get('class', '')}".strip()

    def class_counts(self) -> dict[str, int]:
        """Steps of this task per class of a model card's class table (for cards whose rows
        do not count them); default: none."""
        return {}

    def check_rules(self, x: Any, answer: Any) -> Flag | None:
        return None

    def input_at(self, step: int) -> Any | None:
        return None

    def wrong_answers(self, x: Any, count: int) -> list[Any]:
        return []

    def malformed(self, text: str, u: float) -> str:
        """A format failure the sim writes instead of `text` (u uniform in (0, 1)): by
        default cut short, or prose with no answer. A task whose answers are numbers must not
        make a malformed answer by changing a digit: that would be a valid, wrong answer."""
        if u < 0.5:
            return text[: len(text) // 2]
        return "I am not sure what the answer is; let me think again."
