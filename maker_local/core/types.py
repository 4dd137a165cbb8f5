"""The batch contract between schedules and backends.

A schedule emits `SampleRequest`s; a backend answers each with `n` `Sample`s, in order:
`sample(list[SampleRequest]) -> list[list[Sample]]`. A failed request is data
(finish_reason "error"), never an exception and never a vote.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Constraint:
    """What an answer must look like, for engines that constrain decoding.

    `regex` is the primary form (Outlines ignores JSON integer bounds, so bounds live in the
    regex); `json_schema` is offered to engines or users that prefer JSON output.
    """

    regex: str | None = None
    json_schema: dict[str, Any] | None = None


class SampleRequest:
    """`n` samples of one prompt. Sample j uses seed `seed + j` (vLLM's rule for n > 1).

    Plain data, no callbacks and no oracle: `messages` is the rendered prompt (the schedule
    renders it from `x` with the task; None when the backend said it reads no prompts, as the
    sim does: a million-step sim run never builds a million prompts). A backend that needs more
    about the step (the sim's right and wrong answers) asks the task, from `x`.
    `draft` is the draft answer's text when the schedule has one (rounds over a reference):
    engines that can sample against a draft (voting/draft.py) draw exact samples from one
    prefill of prompt + draft; the samples' distribution does not depend on it.
    `source` says which of a run's sources (voting/pool.py: a model, a rendering, an engine)
    is asked; 0, the run's own model, when the run has no pool.
    """

    __slots__ = ("step", "x", "messages", "n", "temperature", "max_tokens", "seed",
                 "constraint", "first_index", "draft", "source")

    def __init__(self, step: int, x: Any, messages: list[dict[str, str]] | None, n: int,
                 temperature: float, max_tokens: int, seed: int,
                 constraint: Constraint | None = None, first_index: int = 0,
                 draft: str | None = None, source: int = 0):
        self.step, self.x, self.messages, self.n = step, x, messages, n
        self.temperature, self.max_tokens, self.seed = temperature, max_tokens, seed
        self.constraint, self.first_index, self.draft = constraint, first_index, draft
        self.source = source

    def __repr__(self) -> str:
        return (f"SampleRequest(step={self.step}, n={self.n}, temperature={self.temperature}, "
                f"max_tokens={self.max_tokens}, seed={self.seed}, first={self.first_index}"
                + (f", source={self.source})" if self.source else ")"))


@dataclass(slots=True)
class Sample:
    text: str
    # "stop" | "length" | "error" | "unended" (a reasoning model's thinking never ended:
    # `text` is the thought, never parsed; see maker_local/models/reasoning.py)
    finish_reason: str
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_reasoning: int = 0
    latency: float = 0.0  # seconds, per request (shared by its n samples)
    error: str | None = None
    # for errors: whether asking again can help (connection refused or reset, timeout, 5xx);
    # False: it will not (4xx, a malformed reply); None: unknown
    retryable: bool | None = None


class Backend(Protocol):
    """Where samples come from: the whole contract between a backend and the code that uses
    it. A backend class inherits it (`class SimBackend(Backend)`), sets `name` and defines
    `sample` and `describe`; every other member has the value of a backend that lacks the
    feature, and a backend that has it overrides it. What is known of a backend before one is
    built (in process or served, its engine, its own accuracy, what --dry-run shows) is its
    `Kind` in `maker_local.backends.BACKENDS`."""

    name: str  # what the ledger records
    # False for a backend that never reads `SampleRequest.messages` (the sim): the schedule
    # then renders no prompts
    reads_prompts: bool = True
    # True when it draws each step's votes against the step's draft answer (exact draft
    # sampling): the schedule sends the draft with the requests
    uses_draft: bool = False
    default_window: int = 4096  # steps voted at once in rounds, unless --window says
    # seconds of failing requests in a row after which the run stops (None: the driver's)
    retry_for: float | None = None
    version: str | None = None  # the engine's version, when it knows it (a bench reports it)
    gpu: bool = False  # it computes on a GPU (a bench counts GPUs, not machines)

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        """For each request, its `n` samples (an error sample for one that failed)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Its part of a run's identity (what makes its samples what they are)."""
        ...

    def close(self) -> None:
        """Free what it holds (an engine, connections); safe to call twice."""

    def metrics(self) -> dict[str, float] | None:
        """The engine's own counters (a vLLM server's /metrics), or None when it has none."""
        return None

    def take_recovered(self) -> tuple[list[tuple[SampleRequest, Sample]], list[str]]:
        """The failed requests it asked again itself since the last call (counted, never
        votes) and its lines about servers to show; a backend over one engine has none."""
        return [], []

    def take_endpoint_counts(self) -> dict[str, dict[str, int]]:
        """Requests and failures per server since the last call ({} for one engine)."""
        return {}
