"""What a backend is built from: `BackendOptions`, the typed settings every backend's
`from_options` reads, and nothing else. A command builds it once, with its settings
(`commands.settings.resolve`: flags over the profile over these defaults), so a flag that no
backend reads never reaches one, and a backend's defaults live here, in one place."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable

from ..models.profiles import DEFAULT_GRAMMAR

# vllm-http's defaults (backends/vllm_http.py REQUEST_TIMEOUT_S and the run's retry_for):
# spelled here so that building options never imports the HTTP client
REQUEST_TIMEOUT_S = 300.0
RETRY_FOR_S = 600.0


@dataclass(frozen=True)
class SimOptions:
    """The sim model's settings (`--sim-*`); None: `SimModel`'s own default."""

    error: float | None = None  # mean per-sample error among well-formed samples
    valid: float | None = None  # share of samples that are well formed
    spread: float | None = None  # per-step difficulty spread, 0..1
    wrong: int | None = None  # distinct wrong answers per step
    concentration: float | None = None  # share of wrong samples giving the first wrong answer
    tokens_mean: float | None = None  # median output tokens
    tokens_sigma: float | None = None  # log-normal spread of output tokens
    length_slope: float | None = None  # error odds grow by e^slope per sigma of length
    correlation: float | None = None  # within-step correlation of errors (ICC)

    def given(self) -> dict[str, Any]:
        """The settings that were set: SimModel's keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def from_flags(cls, get: Callable[[str], Any]) -> SimOptions:
        """From the sim's own flags (`sim.add_flags`: --sim-error is `get("sim_error")`)."""
        return cls(**{f.name: get(f"sim_{f.name}") for f in fields(cls)})


@dataclass(frozen=True)
class BackendOptions:
    """The settings a backend is built with (sim, vllm, vllm-http, hf each read some)."""

    model: str | None = None  # model path or id (vllm, hf; vllm-http asks the server)
    api: str = "chat"  # "chat" or "completions"
    concurrency: int = 64  # vllm-http: requests in flight per server
    base_url: tuple[str, ...] = ()  # vllm-http: the servers' OpenAI API URLs
    api_key: str | None = field(default=None, repr=False)  # vllm-http; never printed
    request_timeout: float = REQUEST_TIMEOUT_S  # vllm-http: seconds for one whole reply
    retry_for: float = RETRY_FOR_S  # vllm-http: seconds a loading server is waited for
    reasoning_effort: str | None = None  # gpt-oss's low/medium/high
    reasoning_parser: str | None = None  # vLLM's reasoning parser (a thinking model)
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)  # the profile's
    draft_sampling: bool = False  # vllm, vllm-http: votes drawn against the draft answer
    max_model_len: int | None = None  # vllm: engine context length (None: the model's)
    dummy_weights: bool = False  # vllm: random weights (speed tests only)
    dtype: str | None = None  # vllm: the engine's dtype (None: vLLM's choice)
    grammar_backend: str = DEFAULT_GRAMMAR  # vllm: the structured-outputs engine
    device: str = "cpu"  # hf: the torch device
    seed: int = 0  # the run seed (the sim's seed)
    sim: SimOptions = field(default_factory=SimOptions)  # the sim model's settings
