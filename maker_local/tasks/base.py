"""The contract every MDAP task implements.

A task is pure: it knows its states, its prompts, how to read an answer and what the right
answer is (when it has a reference). It knows nothing of backends, voting or storage.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Constraint:
    """What an answer must look like, for engines that constrain decoding.

    `regex` is the primary form (Outlines ignores JSON integer bounds, so bounds live in the
    regex); `json_schema` is offered to engines or users that prefer JSON output.
    """

    regex: str | None = None
    json_schema: dict[str, Any] | None = None


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
