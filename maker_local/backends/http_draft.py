"""Draft sampling over a vLLM server: exact samples against each step's draft answer from one
prefill, as the in-process backend does (voting/draft.py), through the server's HTTP API.

Per step and draft (the requests of a step share them):
1. the prompt's token ids as the server renders it for chat (/tokenize with the messages and
   the generation prompt) and the draft's (/tokenize, no special tokens);
2. one prefill of prompt + draft + end token through /v1/completions, with the token ids as
   the prompt, `max_tokens=1` and `prompt_logprobs=1`: each draft position's log-probability
   of the draft token and its rank;
3. every sample walks its draft: at T = 0 it keeps the draft when every draft token is the
   argmax; at T = 1 it keeps draft token t with probability p(draft[t] | prompt, draft[:t])
   (voting/draft.py `rejection`, with the uniforms of the sample's seed);
4. a sample that leaves the draft: at T = 0 its request is decoded plainly (greedy decoding is
   the argmax path); at T = 1 its own token at the first rejection is drawn by the server from
   p with the draft token removed (`logit_bias` -100 on it; one token, with a seed of its own,
   `residual_seed`), and decoding goes on from there with the sample's seed. Its text is the
   draft's first t tokens (/detokenize) and what the server wrote after them.

Accepting with probability q and otherwise drawing from the rest is drawing from p, so every
sample has exactly the distribution of plain decoding; the seeds are a pure function of the
sample's seed, so a request asked again (at any server) gets the same samples.

The end token is the one the chat template writes after an answer, found once by tokenizing a
made-up exchange. Other temperatures would need the whole vocabulary's probabilities at every
position (vLLM serves at most `--max-logprobs`, 20 by default, and a vocabulary row per
position is heavy over HTTP), so requests at other temperatures, constrained requests and
steps without a draft are decoded plainly. Samples drawn here use plain temperature sampling
(top_p 1, top_k off, no penalties), as the in-process engine does; a server whose model's
generation config sets other defaults applies them to plainly decoded requests only (serve it
with `--generation-config vllm` to have none).
"""
from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from ..core.types import Sample, SampleRequest
from ..voting.draft import rejection
from .shaping import Failure, error_samples, excerpt, json_reply

BANNED = -100.0  # the most negative logit bias vLLM takes: weight e^-100 left on the token
# sampling exactly at the temperature: what the walk assumes of decoding
PLAIN = {"top_p": 1.0, "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0,
         "presence_penalty": 0.0, "frequency_penalty": 0.0}


def draftable(r: SampleRequest) -> bool:
    """A request drawn against its draft: one with a draft, unconstrained (a constraint masks
    tokens that prompt log-probabilities do not know of), at T = 0 or 1."""
    return (r.draft is not None and r.constraint is None and r.messages is not None
            and r.temperature in (0.0, 1.0))


def residual_seed(seed: int) -> int:
    """The seed of the server's draw of a sample's own token where it leaves the draft: one
    apart from every sample seed of the run (bit 62 flipped: another run-seed range), so it
    shares no random stream with the decoding that follows it (seeded with the sample's)."""
    return seed ^ (1 << 62)


class HTTPDraft:
    """Draft sampling for a `VLLMHTTPBackend` (its `_send`, `tokenize` and `_one`)."""

    def __init__(self, backend: Any):
        self.b = backend
        self.end: int | None = None
        self.stats = {"prefills": 0, "kept": 0, "decoded": 0}

    def _chat(self, messages: list[dict[str, str]], generation: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": messages, "add_generation_prompt": generation}
        if self.b.template_kwargs:
            body["chat_template_kwargs"] = self.b.template_kwargs
        return body

    async def setup(self) -> str | None:
        """Find the end token; None when draft sampling can go on, else why it cannot."""
        if self.b.api != "chat":
            return "it needs --api chat (an answer's end token comes from the chat template)"
        msgs = [{"role": "user", "content": "1"}]
        p, d, f = await asyncio.gather(
            self.b.tokenize(self._chat(msgs, True)),
            self.b.tokenize({"prompt": "2", "add_special_tokens": False}),
            self.b.tokenize(self._chat(msgs + [{"role": "assistant", "content": "2"}], False)))
        for got in (p, d, f):
            if isinstance(got, Failure):
                return f"the server cannot tokenize ({got.text})"
        if f[:len(p)] != p or f[len(p):len(p) + len(d)] != d or len(f) <= len(p) + len(d):
            return ("the model's chat template does not write an answer as the generation "
                    "prompt, the answer and an end token")
        self.end = f[len(p) + len(d)]
        return None

    async def sample(self, reqs: list[SampleRequest]) -> list[list[Sample]]:
        out: list[list[Sample] | None] = [None] * len(reqs)
        groups: dict[tuple, list[int]] = {}  # one prefill per step, prompt and draft
        plain: list[int] = []
        for i, r in enumerate(reqs):
            if draftable(r):
                # a step's requests share their prompt, unless a pool renders it otherwise
                prompt = tuple(tuple(sorted(m.items())) for m in r.messages)
                groups.setdefault((r.step, r.draft, prompt), []).append(i)
            else:
                plain.append(i)

        async def one(i: int) -> None:
            out[i] = await self.b._one(reqs[i])

        async def group(idx: list[int]) -> None:
            for i, got in zip(idx, await self._group([reqs[i] for i in idx])):
                out[i] = got

        await asyncio.gather(*map(one, plain), *map(group, groups.values()))
        return out  # type: ignore[return-value]

    async def _group(self, reqs: list[SampleRequest]) -> list[list[Sample]]:
        """The requests of one step that share a prompt and a draft."""
        r0 = reqs[0]
        t0 = time.monotonic()
        ids, draft = await asyncio.gather(
            self.b.tokenize(self._chat(r0.messages, True), r0),
            self.b.tokenize({"prompt": r0.draft, "add_special_tokens": False}, r0))
        for got in (ids, draft):
            if isinstance(got, Failure):
                return [error_samples(r, got.text, got.latency, got.retryable) for r in reqs]
        d = draft + [self.end]
        under = [r for r in reqs if len(d) <= r.max_tokens]  # else the cap cuts the draft
        table: Any = None
        if under:
            table = await self._prefill(ids, d, r0)
            if isinstance(table, Failure):
                return [error_samples(r, table.text, table.latency, table.retryable)
                        for r in reqs]
            self.stats["prefills"] += 1
        texts: dict[int, asyncio.Task] = {}  # draft prefix length -> its text

        def prefix(t: int) -> "asyncio.Task":
            if t not in texts:
                texts[t] = asyncio.ensure_future(self._detokenize(d[:t], r0))
            return texts[t]

        async def request(r: SampleRequest) -> list[Sample]:
            if len(d) > r.max_tokens:
                return await self.b._one(r)
            lps, ranks = table
            if r.temperature == 0.0:
                if all(k == 1 for k in ranks):
                    self.stats["kept"] += r.n
                    return [Sample(r.draft, "stop", len(ids), len(d), 0,
                                   time.monotonic() - t0) for _ in range(r.n)]
                self.stats["decoded"] += r.n
                return await self.b._one(r)  # greedy decoding is the argmax path
            q = [math.exp(lp) for lp in lps]
            got = []
            for j in range(r.n):
                t = rejection(q, r.seed + j)
                if t is None:
                    self.stats["kept"] += 1
                    got.append(Sample(r.draft, "stop", len(ids), len(d), 0,
                                      time.monotonic() - t0))
                else:
                    self.stats["decoded"] += 1
                    got.append(self._leave(r, j, t, ids, d, prefix(t), t0))
            done = await asyncio.gather(*(g for g in got if not isinstance(g, Sample)))
            it = iter(done)
            samples = [g if isinstance(g, Sample) else next(it) for g in got]
            for s in samples:
                if s.finish_reason == "error":
                    return error_samples(r, s.error or "failed", s.latency, s.retryable)
            return samples

        return list(await asyncio.gather(*map(request, reqs)))

    async def _prefill(self, ids: list[int], d: list[int], req: SampleRequest) -> Any:
        """(log-probabilities, ranks) of the draft tokens d after the prompt ids, or a
        Failure."""
        body = {"model": self.b.model, "prompt": ids + d, "max_tokens": 1,
                "temperature": 0.0, "prompt_logprobs": 1}
        at = len(ids)

        def parse(raw: bytes, url: str, latency: float):
            data, fail = json_reply(raw, url, latency)
            if fail is not None:
                return None, fail
            try:
                rows = data["choices"][0]["prompt_logprobs"]
                lps, ranks = [], []
                for t, tok in enumerate(d):
                    entry = rows[at + t][str(tok)]
                    lp, rank = entry["logprob"], entry["rank"]
                    if not isinstance(lp, (int, float)) or type(rank) is not int:
                        raise TypeError
                    lps.append(float(lp))
                    ranks.append(rank)
            except (KeyError, IndexError, TypeError):
                return None, (f"{url} sent a malformed reply (no prompt log-probabilities of "
                              f"the draft): {excerpt(raw)}", False)
            return (lps, ranks), None

        return await self.b._send("/v1/completions", body, parse, req)

    async def _detokenize(self, toks: list[int], req: SampleRequest) -> Any:
        """The text of draft tokens (vLLM's /detokenize), or a Failure."""
        if not toks:
            return ""

        def parse(raw: bytes, url: str, latency: float):
            data, fail = json_reply(raw, url, latency)
            if fail is None and not isinstance(data.get("prompt"), str):
                fail = (f"{url}/detokenize answered {excerpt(raw)}, not a text", False)
            return (None, fail) if fail else (data["prompt"], None)

        return await self.b._send("/detokenize", {"model": self.b.model, "tokens": toks},
                                  parse, req)

    async def _complete(self, body: dict[str, Any], req: SampleRequest) -> Any:
        """One choice of /v1/completions: (text, token ids, finish reason), or a Failure."""
        def parse(raw: bytes, url: str, latency: float):
            data, fail = json_reply(raw, url, latency)
            if fail is not None:
                return None, fail
            try:
                c = data["choices"][0]
                text, toks, fin = c["text"], c["token_ids"], c["finish_reason"]
                if not (isinstance(text, str) and isinstance(fin, str) and isinstance(toks, list)
                        and toks and all(type(t) is int for t in toks)):
                    raise TypeError
            except (KeyError, IndexError, TypeError):
                return None, (f"{url} sent a malformed reply: {excerpt(raw)}", False)
            if fin == "abort":  # vLLM aborted it (e.g. shutting down): ask again
                return None, (f"{url} aborted the request", True)
            return (text, toks, fin), None

        return await self.b._send("/v1/completions", {"model": self.b.model, **body, **PLAIN,
                                                      "return_token_ids": True}, parse, req)

    async def _leave(self, r: SampleRequest, j: int, t: int, ids: list[int], d: list[int],
                     prefix: "asyncio.Task", t0: float) -> Sample:
        """Sample j of r (at T = 1), which keeps the first t draft tokens: its own token at t
        from p without the draft's, then decoding from there."""
        seed = r.seed + j
        own = await self._complete({"prompt": ids + d[:t], "max_tokens": 1, "temperature": 1.0,
                                    "seed": residual_seed(seed),
                                    "logit_bias": {str(d[t]): BANNED}}, r)
        if isinstance(own, Failure):
            return error_samples(r, own.text, own.latency, own.retryable)[0]
        text, toks, fin = own
        pre = await prefix
        if isinstance(pre, Failure):
            return error_samples(r, pre.text, pre.latency, pre.retryable)[0]
        n = t + 1
        if fin == "stop" or n >= r.max_tokens:  # its own token ended it, or the cap did
            return Sample(pre + text, "stop" if fin == "stop" else "length", len(ids), n, 0,
                          time.monotonic() - t0)
        more = await self._complete({"prompt": ids + d[:t] + toks[:1],
                                     "max_tokens": r.max_tokens - n, "temperature": 1.0,
                                     "seed": seed}, r)
        if isinstance(more, Failure):
            return error_samples(r, more.text, more.latency, more.retryable)[0]
        rest, rest_toks, fin = more
        return Sample(pre + text + rest, "length" if fin == "length" else "stop", len(ids),
                      n + len(rest_toks), 0, time.monotonic() - t0)
