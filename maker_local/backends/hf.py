"""`hf`: transformers + Outlines (>= 1.3.2), for machines where vLLM does not run.

The task's constraint (a regex) is applied by Outlines during generation, the same constraint
object vLLM gets. Outlines returns only text, so tokens are counted with the tokenizer and a
sample that used its whole `max_tokens` is marked "length". Seeds: a request of n samples
seeds torch's generator with its seed once (transformers.set_seed), so the request is
reproducible; vLLM's seed+i per sample is not available here.
"""
from __future__ import annotations

import time
from typing import Any

from ..types import Sample, SampleRequest
from .shaping import error_samples


class HFBackend:
    name = "hf"
    default_window = 256

    def __init__(self, model: str, device: str = "cpu"):
        try:
            import outlines
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ValueError("the hf backend needs transformers, torch and outlines>=1.3.2: "
                             "pip install -e '.[hf]'") from None
        t0 = time.monotonic()
        self.tok = AutoTokenizer.from_pretrained(model)
        self.hf = AutoModelForCausalLM.from_pretrained(model).to(device).eval()
        self.model = outlines.from_transformers(self.hf, self.tok)
        self.load_seconds = time.monotonic() - t0
        self.path, self.device, self.torch = model, device, torch
        self._generators: dict[str | None, Any] = {}
        # Outlines tokenizes the prompt with special tokens on: if the tokenizer adds BOS
        # itself, drop the BOS the chat template wrote, or the model sees two
        bos = self.tok.bos_token
        ids = self.tok("x")["input_ids"]
        self._strip_bos = bool(bos) and bool(ids) and ids[0] == self.tok.bos_token_id

    def describe(self) -> dict[str, Any]:
        import os
        return {"backend": self.name, "model": os.path.basename(self.path.rstrip("/"))}

    def close(self) -> None:
        self._generators.clear()

    def _generator(self, regex: str | None):
        import outlines
        from outlines.types import Regex

        if regex not in self._generators:  # compiling a regex is costly: once per regex
            self._generators[regex] = outlines.Generator(
                self.model, Regex(regex) if regex else None)
        return self._generators[regex]

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        return [self._one(r) for r in requests]

    def _one(self, req: SampleRequest) -> list[Sample]:
        import transformers

        prompt = self.tok.apply_chat_template(req.messages, tokenize=False,
                                              add_generation_prompt=True)
        if self._strip_bos and prompt.startswith(self.tok.bos_token):
            prompt = prompt[len(self.tok.bos_token):]
        gen = self._generator(req.constraint.regex if req.constraint else None)
        greedy = req.temperature == 0
        kwargs: dict[str, Any] = {"max_new_tokens": req.max_tokens,
                                  "num_return_sequences": req.n, "do_sample": not greedy}
        if not greedy:
            kwargs["temperature"] = req.temperature
        transformers.set_seed(req.seed % 2**32)
        t0 = time.monotonic()
        try:
            with self.torch.no_grad():
                out = gen(prompt, **kwargs)
        except Exception as e:  # noqa: BLE001  (a failed request is data)
            return error_samples(req, f"{type(e).__name__}: {e}", time.monotonic() - t0)
        latency = time.monotonic() - t0
        texts = out if isinstance(out, list) else [out]
        tin = len(self.tok(prompt)["input_ids"])
        samples = []
        for t in texts:
            n = len(self.tok(t, add_special_tokens=False)["input_ids"])
            samples.append(Sample(t, "length" if n >= req.max_tokens else "stop", tin, n, 0,
                                  latency))
        return samples


def from_options(task: Any, options: dict[str, Any]) -> HFBackend:
    if not options.get("model"):
        raise ValueError("the hf backend needs --model (a local path) or --profile")
    return HFBackend(options["model"], device=options.get("device") or "cpu")
