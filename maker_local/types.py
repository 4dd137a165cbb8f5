"""The batch contract between schedules and backends.

A schedule emits `SampleRequest`s; a backend answers each with `n` `Sample`s, in order:
`sample(list[SampleRequest]) -> list[list[Sample]]`. A failed request is data
(finish_reason "error"), never an exception and never a vote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .tasks.base import Constraint


@dataclass(slots=True)
class SampleRequest:
    """`n` samples of one prompt. Sample j uses seed `seed + j` (vLLM's rule for n > 1)."""

    step: int
    x: Any  # the task input; the sim reads it, real engines read `messages`
    messages: list[dict[str, str]]
    n: int
    temperature: float
    max_tokens: int
    seed: int
    constraint: Constraint | None = None
    first_index: int = 0  # vote index of sample 0 within its step


@dataclass(slots=True)
class Sample:
    text: str
    finish_reason: str  # "stop" | "length" | "error"
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_reasoning: int = 0
    latency: float = 0.0  # seconds, per request (shared by its n samples)
    error: str | None = None


class Backend(Protocol):
    """Where samples come from. `name` is what the ledger records."""

    name: str

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]: ...
    def describe(self) -> dict[str, Any]: ...
    def close(self) -> None: ...
