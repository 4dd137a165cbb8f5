"""`hf`: transformers + Outlines (>= 1.3.2), for machines where vLLM does not run.

The task's constraint (a regex) is applied by Outlines during generation, the same constraint
object vLLM gets. Outlines returns only text, so tokens are counted with the tokenizer and a
sample that used its whole `max_tokens` is marked "length". Seeds: a request of n samples
seeds torch's generator with its seed once (transformers.set_seed), so the request is
reproducible; vLLM's seed+i per sample is not available here.

Reasoning models (`reasoning_parser`): with a constraint, each request is generated in two
phases: the thought, free, until the end-of-thinking marker (transformers' stop strings);
then the answer, constrained by Outlines, from prompt + thought, within what is left of the
cap. Without one, the output is split at the marker. Either way the answer is only the text
after the marker; a thought that never ended is "unended" (or "length": the cap cut it).
gpt-oss (`openai_gptoss`) works this way too, through its chat template (the same token ids
as vLLM's harmony rendering: tests/models/test_oss.py), its thought tokens counted as vLLM counts
them; Outlines' first regex over its 201,088-id vocabulary takes minutes to compile.
"""
from __future__ import annotations

import time
from typing import Any

from ..core.types import Backend, Sample, SampleRequest
from ..models.reasoning import UNENDED
from . import harmony
from .options import BackendOptions
from .shaping import error_samples, template_kwargs


class HFBackend(Backend):
    name = "hf"
    default_window = 256

    def __init__(self, model: str, device: str = "cpu", reasoning_parser: str | None = None,
                 chat_template_kwargs: dict[str, Any] | None = None):
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
        # Outlines 1.3 wraps a text prompt in the tokenizer's chat template itself; the
        # prompt here is already rendered (with the profile's template kwargs, and for a
        # reasoning model's answer, prompt + thought), so it must go in as it is
        self.model.type_adapter.has_chat_template = False
        self.load_seconds = time.monotonic() - t0
        self.path, self.device, self.torch = model, device, torch
        self.gpu = device != "cpu"
        self.reasoning_parser = reasoning_parser
        self.template_kwargs = dict(chat_template_kwargs or {})
        self.harmony = harmony.is_harmony(reasoning_parser)
        if self.harmony:  # the date in the system message, as vLLM's server writes it
            self.template_kwargs.setdefault("start_date", harmony.start_date())
        self.end: str | None = None
        if reasoning_parser:
            from ..models.reasoning import marker_ids, markers
            marker_ids(self.tok, reasoning_parser)  # the tokenizer can write the marker
            self.end = markers(reasoning_parser).end
        self._generators: dict[str | None, Any] = {}
        # Outlines tokenizes the prompt with special tokens on: if the tokenizer adds BOS
        # itself, drop the BOS the chat template wrote, or the model sees two
        bos = self.tok.bos_token
        ids = self.tok("x")["input_ids"]
        self._strip_bos = bool(bos) and bool(ids) and ids[0] == self.tok.bos_token_id

    def describe(self) -> dict[str, Any]:
        import os
        d = {"backend": self.name, "model": os.path.basename(self.path.rstrip("/"))}
        if self.reasoning_parser:
            d["reasoning_parser"] = self.reasoning_parser
        return d

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
                                              add_generation_prompt=True,
                                              **self.template_kwargs)
        if self._strip_bos and prompt.startswith(self.tok.bos_token):
            prompt = prompt[len(self.tok.bos_token):]
        if self.end is not None and req.constraint is not None and req.constraint.regex:
            return self._think_then_answer(req, prompt)
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
            n = self._count(t)
            capped = n >= req.max_tokens
            if self.end is None:
                samples.append(Sample(t, "length" if capped else "stop", tin, n, 0, latency))
                continue
            at = t.rfind(self.end)
            if at < 0:
                samples.append(Sample(t, "length" if capped else UNENDED, tin, n, n, latency))
                continue
            cut = at + len(self.end)
            samples.append(Sample(t[cut:], "length" if capped else "stop", tin, n,
                                  self._count(t[:cut]), latency))
        return samples

    def _count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])

    def _think_then_answer(self, req: SampleRequest, prompt: str) -> list[Sample]:
        """Phase 1: n thoughts, unconstrained, each until the end marker; phase 2: each
        answer constrained by Outlines from prompt + its thought, in the rest of the cap."""
        import transformers

        tok, torch = self.tok, self.torch
        greedy = req.temperature == 0
        transformers.set_seed(req.seed % 2**32)
        t0 = time.monotonic()
        enc = tok(prompt, return_tensors="pt").to(self.device)
        plen = enc["input_ids"].shape[1]
        kwargs: dict[str, Any] = {"max_new_tokens": req.max_tokens, "do_sample": not greedy,
                                  "num_return_sequences": req.n, "stop_strings": [self.end],
                                  "tokenizer": tok,
                                  "pad_token_id": tok.pad_token_id or tok.eos_token_id}
        if not greedy:
            kwargs["temperature"] = req.temperature
        gen = self._generator(req.constraint.regex)
        try:
            with torch.no_grad():
                out = self.hf.generate(**enc, **kwargs)
            rows = []
            for seq in out:
                new = seq[plen:].tolist()
                while new and new[-1] == kwargs["pad_token_id"]:
                    new.pop()
                rows.append(tok.decode(new, skip_special_tokens=False))
            samples = []
            for text in rows:
                at = text.find(self.end)
                n_thought = self._count(text)
                if at < 0:
                    fin = "length" if n_thought >= req.max_tokens else UNENDED
                    samples.append(Sample(text, fin, plen, n_thought, n_thought, 0.0))
                    continue
                thought = text[:at + len(self.end)]
                n_thought = self._count(thought)
                left = req.max_tokens - n_thought
                # thought tokens as vLLM counts them: for gpt-oss, the analysis channel's
                reasoning = n_thought if not self.harmony else harmony.read(
                    tok.encode(thought, add_special_tokens=False)).reasoning_tokens
                if left <= 0:
                    samples.append(Sample("", "length", plen, n_thought, n_thought, 0.0))
                    continue
                a_kwargs: dict[str, Any] = {"max_new_tokens": left, "do_sample": not greedy}
                if not greedy:
                    a_kwargs["temperature"] = req.temperature
                with torch.no_grad():
                    answer = gen(prompt + thought, **a_kwargs)
                answer = answer[0] if isinstance(answer, list) else answer
                n_answer = self._count(answer)
                samples.append(Sample(answer, "length" if n_answer >= left else "stop", plen,
                                      n_thought + n_answer, reasoning, 0.0))
        except Exception as e:  # noqa: BLE001  (a failed request is data)
            return error_samples(req, f"{type(e).__name__}: {e}", time.monotonic() - t0)
        latency = time.monotonic() - t0
        for smp in samples:
            smp.latency = latency
        return samples


def from_options(task: Any, options: BackendOptions) -> HFBackend:
    if not options.model:
        raise ValueError("the hf backend needs --model (a local path) or --profile")
    return HFBackend(options.model, device=options.device,
                     reasoning_parser=options.reasoning_parser,
                     chat_template_kwargs=template_kwargs(options))
