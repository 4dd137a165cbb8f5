"""`vllm-http`: an async client of one or more vLLM OpenAI-compatible servers.

Each `SampleRequest` is one HTTP request with n choices, sent with bounded concurrency to the
least-loaded server, over the OpenAI SDK's async client (its transport is markedly faster
under many concurrent requests than a plain httpx client here; we take the raw bytes and do
our own parsing). One attempt per request: a failure comes back as n error samples that say
what failed and whether asking again can help (connection refused or reset, a timeout, 408,
429 and 5xx can; other 4xx and malformed replies cannot). The driver (`failures.Retrier`)
asks failed requests again with the same seeds, with backoff and a status line, or stops the
run. Request shaping and reply checking live in `shaping.py`.

Timeouts: connecting `CONNECT_TIMEOUT_S`; a whole reply `REQUEST_TIMEOUT_S` (--request-timeout)
after it was sent; at start-up, no server listening is reported at once and waited for
`NO_SERVER_WAIT_S` (a `maker-local serve` that is starting survives that), a server that
answers but is not ready (503 while loading) up to `retry_for`.
"""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from ..types import Sample, SampleRequest
from .shaping import error_samples, excerpt, parse_body, request_body

RETRYABLE_STATUS = {408, 425, 429}  # and every 5xx
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 300.0  # n samples of up to max_tokens each, on a loaded server
NO_SERVER_WAIT_S = 90.0
STALL_SAY_S = 60.0  # no reply at all for this long: a status line (then every 60 s)


def retryable_status(code: int) -> bool:
    return code in RETRYABLE_STATUS or 500 <= code <= 599


def describe_failure(e: BaseException, timeout: float) -> tuple[str, bool | None]:
    """What went wrong with one HTTP exchange, and whether asking again can help."""
    import openai

    if isinstance(e, openai.APIStatusError):
        code = e.status_code
        try:
            body = excerpt(e.response.text)
        except Exception:  # noqa: BLE001  (a body that cannot be read is no reason to crash)
            body = "(no body)"
        return f"answered HTTP {code}: {body}", retryable_status(code)
    if isinstance(e, openai.APITimeoutError):
        return f"did not answer within {timeout:.0f} s (--request-timeout)", True
    if isinstance(e, openai.APIConnectionError):
        chain, x = [], e.__cause__ or e.__context__
        while x is not None and x not in chain:  # the SDK wraps httpx wraps the OS error
            chain.append(x)
            x = x.__cause__ or x.__context__
        if any(isinstance(x, ConnectionRefusedError) for x in chain):
            text = "connection refused"
        elif any(isinstance(x, ConnectionResetError) for x in chain):
            text = "connection reset"
        else:
            text = str(chain[-1] if chain else e) or type(chain[-1] if chain else e).__name__
        return f"connection failed ({text})", True
    return f"failed ({type(e).__name__}: {e})", None


class VLLMHTTPBackend:
    name = "vllm-http"
    default_window = 4096

    def __init__(self, base_urls: list[str], model: str | None = None, api: str = "chat",
                 concurrency: int = 64, timeout: float = REQUEST_TIMEOUT_S,
                 retry_for: float = 600.0, reasoning_effort: str | None = None,
                 api_key: str = "EMPTY", wait_for_server: float = NO_SERVER_WAIT_S,
                 reasoning_parser: str | None = None,
                 chat_template_kwargs: dict[str, Any] | None = None):
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
        self.wait_for_server = wait_for_server
        self.loop = asyncio.new_event_loop()
        self._clients: list[Any] | None = None
        self.model = model or self.loop.run_until_complete(self._served_model())
        self.reasoning_parser = reasoning_parser
        self.template_kwargs = dict(chat_template_kwargs or {})
        # where a reasoning model's thinking ends, as the served tokenizer writes it
        self.end_ids = (self.loop.run_until_complete(self._end_ids(reasoning_parser))
                        if reasoning_parser else None)
        self.inflight = [0] * len(self.base_urls)
        self._last_reply = time.monotonic()
        self.failures = 0  # failed requests so far (a health signal for reports)

    def describe(self) -> dict[str, Any]:
        d = {"backend": self.name, "model": self.model, "api": self.api,
             "servers": len(self.base_urls), "reasoning_effort": self.reasoning_effort}
        if self.reasoning_parser:
            d["reasoning_parser"] = self.reasoning_parser
        return d

    def close(self) -> None:
        if self._clients is not None:
            for c in self._clients:
                self.loop.run_until_complete(c.close())
            self._clients = None
        self.loop.close()

    # --------------------------------------------------------------------------- plumbing
    @property
    def clients(self) -> list[Any]:
        """One OpenAI SDK client per server (retries off: the driver retries)."""
        if self._clients is None:
            from openai import AsyncOpenAI, Timeout
            t = Timeout(self.timeout, connect=CONNECT_TIMEOUT_S)
            self._clients = [AsyncOpenAI(base_url=u, api_key=self.api_key, max_retries=0,
                                         timeout=t) for u in self.base_urls]
        return self._clients

    async def _served_model(self) -> str:
        """The model name of the first server that answers /v1/models. Says at once when
        none does; waits `wait_for_server` s for one to listen, `retry_for` s for one that
        listens but is not ready."""
        start = time.monotonic()
        next_say = 0.0
        while True:
            listening = False
            for url, client in zip(self.base_urls, self.clients):
                try:
                    got = await client.get("/models", cast_to=object,
                                           options={"timeout": 10.0})
                except Exception as e:  # noqa: BLE001  (any failure: say it, try again)
                    why, _ = describe_failure(e, 10.0)
                    listening |= not why.startswith("connection")
                    last = f"{url} {why}"
                    continue
                try:
                    return str(got["data"][0]["id"])
                except (KeyError, IndexError, TypeError):
                    raise ValueError(f"{url}/models answered {excerpt(str(got))}, not a vLLM "
                                     "model list: check --base-url (a vLLM server's "
                                     "OpenAI API, ending in /v1), or give --model") from None
            waited = time.monotonic() - start
            limit = self.retry_for if listening else self.wait_for_server
            if waited > limit:
                raise ValueError(f"no vLLM server answered at {', '.join(self.base_urls)} "
                                 f"within {limit:.0f} s ({last}); start one with "
                                 "maker-local serve, or check --base-url (it ends in /v1)")
            if waited >= next_say:
                next_say = waited + 10.0
                print(f"maker-local: waiting for a vLLM server: {last}; waited {waited:.0f} s,"
                      f" giving up after {limit:.0f} s", file=sys.stderr, flush=True)
            await asyncio.sleep(2.0)

    async def _end_ids(self, parser: str) -> list[int]:
        """The end-of-thinking marker of `parser` as the first server's tokenizer writes it
        (vLLM's /tokenize), or [] (with a warning) when no server can say: then thought
        tokens come from usage and a reply with no content counts as unended."""
        import httpx

        from ..reasoning import markers
        end = markers(parser).end
        url = self.base_urls[0].removesuffix("/v1") + "/tokenize"
        try:
            async with httpx.AsyncClient(timeout=10.0) as http:
                r = await http.post(url, json={"model": self.model, "prompt": end,
                                               "add_special_tokens": False})
            ids = r.json()["tokens"]
            if isinstance(ids, list) and ids and all(type(t) is int for t in ids):
                return ids
        except Exception:  # noqa: BLE001  (best effort: the fallback below still works)
            pass
        print(f"maker-local: {url} did not tokenize {end!r}; thought tokens are taken from "
              "usage", file=sys.stderr, flush=True)
        return []

    def _pick(self) -> int:
        return min(range(len(self.base_urls)), key=lambda i: self.inflight[i])

    async def _one(self, req: SampleRequest, sem: asyncio.Semaphore) -> list[Sample]:
        """One attempt at one request: its samples, or n error samples saying why."""
        path = "/chat/completions" if self.api == "chat" else "/completions"
        body = request_body(req, self.model, self.api, self.reasoning_effort,
                            self.template_kwargs)
        async with sem:
            i = self._pick()
            url = self.base_urls[i]
            self.inflight[i] += 1
            t0 = time.monotonic()
            try:
                raw = await self.clients[i].post(path, body=body, cast_to=bytes)
            except Exception as e:  # noqa: BLE001  (a failed request is data)
                why, retry = describe_failure(e, self.timeout)
                self.failures += 1
                self._last_reply = time.monotonic()
                return error_samples(req, f"{url} {why}", time.monotonic() - t0, retry)
            finally:
                self.inflight[i] -= 1
        self._last_reply = time.monotonic()
        got = parse_body(raw, req, time.monotonic() - t0, url, self.end_ids)
        if got and got[0].finish_reason == "error":
            self.failures += 1
        return got

    async def _batch(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        sem = asyncio.Semaphore(self.concurrency * len(self.base_urls))
        self._last_reply = time.monotonic()
        watch = asyncio.ensure_future(self._say_stalls(len(requests)))
        try:
            return await asyncio.gather(*(self._one(r, sem) for r in requests))
        finally:
            watch.cancel()

    async def _say_stalls(self, count: int) -> None:
        """A status line when no reply came for STALL_SAY_S (a hung server is said, not
        waited out in silence), and every STALL_SAY_S after."""
        said = 0.0
        while True:
            await asyncio.sleep(1.0)
            quiet = time.monotonic() - self._last_reply
            if quiet < said:
                said = 0.0  # replies came again
            if quiet >= said + STALL_SAY_S:
                said = quiet
                print(f"maker-local: no reply from {', '.join(self.base_urls)} for "
                      f"{quiet:.0f} s (of {count} requests; each is asked again after "
                      f"{self.timeout:.0f} s without a reply)", file=sys.stderr, flush=True)

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
        reasoning_parser=options.get("reasoning_parser"),
        chat_template_kwargs=options.get("chat_template_kwargs"),
        timeout=options.get("request_timeout") or REQUEST_TIMEOUT_S,
        retry_for=options.get("retry_for") or 600.0)
