"""`vllm-http`: an async client of one or more vLLM OpenAI-compatible servers.

Each `SampleRequest` is one HTTP request with n choices, sent with bounded concurrency to the
least-loaded server, over the OpenAI SDK's async client (its transport is markedly faster
under many concurrent requests than a plain httpx client here; we take the raw JSON and do our
own parsing and retries). Connection errors, timeouts, 429 and 5xx are retried with
exponential backoff for up to `retry_for` seconds (a server that dies and comes back loses
nothing: the same seeds are asked again); what still fails comes back as error samples, which
the schedule red-flags and asks again next round. Request shaping lives in `shaping.py`.
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from ..types import Sample, SampleRequest
from .shaping import error_samples, parse_response, request_body

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class VLLMHTTPBackend:
    name = "vllm-http"
    default_window = 4096

    def __init__(self, base_urls: list[str], model: str | None = None, api: str = "chat",
                 concurrency: int = 64, timeout: float = 600.0, retry_for: float = 600.0,
                 reasoning_effort: str | None = None, api_key: str = "EMPTY"):
        try:
            import openai  # noqa: F401
        except ImportError:
            raise ValueError("the vllm-http backend needs the openai package: "
                             "pip install -e '.[cpu]' (or '.[gpu]')") from None

        if not base_urls:
            raise ValueError("vllm-http needs at least one --base-url "
                             "(e.g. http://127.0.0.1:8000/v1; start one with maker-local serve)")
        self.base_urls = [u.rstrip("/") for u in base_urls]
        self.api, self.concurrency, self.timeout = api, concurrency, timeout
        self.retry_for, self.reasoning_effort, self.api_key = retry_for, reasoning_effort, api_key
        self.loop = asyncio.new_event_loop()
        self._clients: list[Any] | None = None
        self.model = model or self.loop.run_until_complete(self._served_model())
        self.inflight = [0] * len(self.base_urls)
        self.retries = 0  # retried attempts so far (a health signal for reports)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "api": self.api,
                "servers": len(self.base_urls), "reasoning_effort": self.reasoning_effort}

    def close(self) -> None:
        if self._clients is not None:
            for c in self._clients:
                self.loop.run_until_complete(c.close())
            self._clients = None
        self.loop.close()

    # --------------------------------------------------------------------------- plumbing
    @property
    def clients(self) -> list[Any]:
        """One OpenAI SDK client per server (retries off: we retry ourselves)."""
        if self._clients is None:
            from openai import AsyncOpenAI
            self._clients = [AsyncOpenAI(base_url=u, api_key=self.api_key, max_retries=0,
                                         timeout=self.timeout) for u in self.base_urls]
        return self._clients

    async def _served_model(self) -> str:
        """The model name of the first server that answers /v1/models (waits for it)."""
        deadline = time.monotonic() + self.retry_for
        while True:
            for client in self.clients:
                try:
                    got = await client.get("/models", cast_to=object,
                                           options={"timeout": 10.0})
                    return got["data"][0]["id"]
                except Exception as e:  # noqa: BLE001  (any failure: try again shortly)
                    last = e
            if time.monotonic() > deadline:
                raise ValueError(f"no vLLM server answered at {', '.join(self.base_urls)} "
                                 f"({last}); start one with maker-local serve") from None
            await asyncio.sleep(2.0)

    def _pick(self) -> int:
        return min(range(len(self.base_urls)), key=lambda i: self.inflight[i])

    async def _one(self, req: SampleRequest, sem: asyncio.Semaphore) -> list[Sample]:
        import openai

        path = "/chat/completions" if self.api == "chat" else "/completions"
        body = request_body(req, self.model, self.api, self.reasoning_effort)
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        async with sem:
            while True:
                i = self._pick()
                self.inflight[i] += 1
                t0 = time.monotonic()
                try:
                    data = await self.clients[i].post(path, body=body, cast_to=object)
                    return parse_response(data, req, time.monotonic() - t0)
                except openai.APIStatusError as e:
                    why = f"HTTP {e.status_code}: {str(e)[:200]}"
                    if e.status_code not in RETRYABLE_STATUS:
                        return error_samples(req, why, time.monotonic() - t0)
                except openai.APIConnectionError as e:  # refused, reset, timed out
                    why = f"{type(e).__name__}: {e}"
                finally:
                    self.inflight[i] -= 1
                if time.monotonic() > deadline:
                    return error_samples(req, f"gave up after {attempt + 1} attempts: {why}")
                attempt += 1
                self.retries += 1
                await asyncio.sleep(min(30.0, 0.25 * 2 ** min(attempt, 7)) * random.uniform(0.5, 1))

    async def _batch(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        sem = asyncio.Semaphore(self.concurrency * len(self.base_urls))
        return await asyncio.gather(*(self._one(r, sem) for r in requests))

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        return self.loop.run_until_complete(self._batch(requests))

    def metrics(self) -> dict[str, float]:
        """Counters from each server's /metrics (Prometheus text), summed over servers."""
        return self.loop.run_until_complete(self._metrics())

    async def _metrics(self) -> dict[str, float]:
        import httpx

        out: dict[str, float] = {}
        for url in self.base_urls:
            try:
                async with httpx.AsyncClient(timeout=10.0) as http:
                    r = await http.get(url.removesuffix("/v1") + "/metrics")
            except Exception:  # noqa: BLE001  (metrics are best effort)
                continue
            for line in r.text.splitlines():
                if line.startswith("vllm:") and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    key = name.split("{")[0]
                    try:
                        out[key] = out.get(key, 0.0) + float(value)
                    except ValueError:
                        pass
        return out


def from_options(task: Any, options: dict[str, Any]) -> VLLMHTTPBackend:
    return VLLMHTTPBackend(
        base_urls=options.get("base_url") or [], model=options.get("model"),
        api=options.get("api") or "chat", concurrency=options.get("concurrency") or 64,
        reasoning_effort=options.get("reasoning_effort"),
        retry_for=options.get("retry_for") or 600.0)
