"""`vllm-http`: an async client of one or more vLLM OpenAI-compatible servers.

Each `SampleRequest` is one HTTP request with n choices, sent with bounded concurrency to the
least-loaded server that is up, over the OpenAI SDK's async client (its transport is markedly
faster under many concurrent requests than a plain httpx client here; we take the raw bytes
and do our own parsing). Request shaping and reply checking live in `shaping.py`.

Failover (`endpoints.py`): a request that fails at one server in a way that asking again can
help (connection refused or reset, a timeout, 408, 425, 429, 5xx, an aborted request) goes at
once to another server that is up, with the same body and so the same seeds: a killed replica
costs its in-flight requests' time, not a vote. (A connection the server closed, reset or
gone before the reply, is first asked again once at the same server: a kept-alive connection
that the server dropped as it was reused says nothing about the server, while a dead server
refuses the new one at once.) The failed server gets no requests until it is due for a probe
(1, 2, 4 ... 30 s), and is used again once one succeeds. When no server is
up, or a failure cannot be helped by asking again (other 4xx, malformed replies), the request
comes back as n error samples that say what failed and whether asking again can help; the
driver (`failures.Retrier`) asks again with the same seeds, with backoff and a status line, or
stops the run. The failures this backend recovered from itself, and the lines saying a server
went down or came back, are handed to the driver (`take_recovered`) to be counted and shown;
requests and failures per server are counted for the ledger (`take_endpoint_counts`).

Draft sampling (`http_draft.py`, `draft_sampling=True`): each step's votes are drawn against its
draft answer from one prefill with prompt log-probabilities, exact as in process.

`api_key`: sent as `Authorization: Bearer ...` to every server (vLLM's `--api-key`); it is
never printed, never part of `describe()` (the run's identity) and never stored.

Timeouts: connecting `CONNECT_TIMEOUT_S`; a whole reply `REQUEST_TIMEOUT_S` (--request-timeout)
after it was sent; at start-up, no server listening is reported at once and waited for
`NO_SERVER_WAIT_S` (a `maker-local serve` that is starting survives that), a server that
answers but is not ready (503 while loading) up to `retry_for`.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from ..core.types import Backend, Sample, SampleRequest
from . import harmony
from .endpoints import Endpoints, public_url
from .options import BackendOptions
from .shaping import (Failure, Parser, error_samples, excerpt, json_reply, parse_body,
                      request_body)

RETRYABLE_STATUS = {408, 425, 429}  # and every 5xx
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 300.0  # n samples of up to max_tokens each, on a loaded server
NO_SERVER_WAIT_S = 90.0
PROBE_TIMEOUT_S = 10.0  # one start-up question (/v1/models) waits this long for its answer
STALL_SAY_S = 60.0  # no reply at all for this long: a status line (then every 60 s)
# a kept-alive connection idle this long is not used again: vLLM's server closes them after
# 5 s (VLLM_HTTP_TIMEOUT_KEEP_ALIVE), and one it closes as we reuse it is a reset
KEEPALIVE_S = 2.0
API_KEY_ENV = "MAKER_LOCAL_API_KEY"
# said of a request that timed out at a server that answered others meanwhile: what vLLM's
# data parallelism does when a node dies (measured, README "Beyond one machine")
HELD = (" while it answered others (an engine behind it may be gone: vLLM's data-parallel "
        "endpoint keeps sending a dead node's engines requests that never return; asked "
        "again with the same seeds; restart every node to get the engine back)")


def retryable_status(code: int) -> bool:
    return code in RETRYABLE_STATUS or 500 <= code <= 599


def describe_failure(e: BaseException, timeout: float, flag: str = " (--request-timeout)"
                     ) -> tuple[str, bool | None]:
    """What went wrong with one HTTP exchange, and whether asking again can help (`flag`:
    the option that set `timeout`, said after it)."""
    import openai

    if isinstance(e, openai.APIStatusError):
        code = e.status_code
        try:
            body = excerpt(e.response.text)
        except Exception:  # noqa: BLE001  (a body that cannot be read is no reason to crash)
            body = "(no body)"
        return f"answered HTTP {code}: {body}", retryable_status(code)
    if isinstance(e, openai.APITimeoutError):
        return f"did not answer within {timeout:.0f} s{flag}", True
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


class VLLMHTTPBackend(Backend):
    name = "vllm-http"
    default_window = 4096

    def __init__(self, base_urls: list[str], model: str | None = None, api: str = "chat",
                 concurrency: int = 64, timeout: float = REQUEST_TIMEOUT_S,
                 retry_for: float = 600.0, reasoning_effort: str | None = None,
                 api_key: str | None = None, wait_for_server: float = NO_SERVER_WAIT_S,
                 reasoning_parser: str | None = None,
                 chat_template_kwargs: dict[str, Any] | None = None,
                 draft_sampling: bool = False):
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
        self.retry_for, self.reasoning_effort = retry_for, reasoning_effort
        self._api_key = api_key or "EMPTY"  # never printed, described or stored
        self.wait_for_server = wait_for_server
        self.endpoints = Endpoints(self.base_urls)
        self._probes: dict[int, asyncio.Event] = {}  # endpoint -> its probe's outcome
        self._recovered: list[tuple[SampleRequest, Sample]] = []
        self._saved: dict[str, dict[str, int]] = {}  # counts already handed to the ledger
        self.loop = asyncio.new_event_loop()
        self._sem = asyncio.Semaphore(concurrency * len(self.base_urls))
        self._clients: list[Any] | None = None
        self._answered_at: dict[int, float] = {}  # per server: when it last replied
        self._last_reply = time.monotonic()
        self.failures = 0  # failed requests so far (a health signal for reports)
        self.model = model or self.loop.run_until_complete(self._served_model())
        self.reasoning_parser = reasoning_parser
        self.template_kwargs = dict(chat_template_kwargs or {})
        # gpt-oss: each choice read by channel from its token ids (backends/harmony.py);
        # other reasoning models: where thinking ends, as the served tokenizer writes it
        self.harmony = harmony.is_harmony(reasoning_parser)
        self.fault: str | None = None  # an engine fault found in a batch (harmony.fault)
        self._reads: list[Any] | None = None  # this batch's harmony reads
        self.end_ids = (self.loop.run_until_complete(self._end_ids(reasoning_parser))
                        if reasoning_parser and not self.harmony else None)
        self.draft: Any = None
        if draft_sampling and not reasoning_parser:  # a thought is not in the draft answer
            from .http_draft import HTTPDraft
            draft = HTTPDraft(self)
            why = self.loop.run_until_complete(draft.setup())
            if why is None:
                self.draft = draft
                self.default_window = 16384  # a round is mostly prefills (as in process)
            else:
                print(f"maker-local: no draft sampling over HTTP: {why}; every sample is "
                      "decoded", file=sys.stderr, flush=True)
        self.uses_draft = self.draft is not None

    def describe(self) -> dict[str, Any]:
        # not the servers: a run may go on over other replicas (or fewer) of the same model
        d = {"backend": self.name, "model": self.model, "api": self.api,
             "reasoning_effort": self.reasoning_effort}
        if self.uses_draft:  # part of a run's identity: its samples come from other seeds
            d["sampling"] = "draft"
        if self.reasoning_parser:
            d["reasoning_parser"] = self.reasoning_parser
        return d

    @property
    def draft_stats(self) -> dict[str, int]:
        return self.draft.stats if self.draft is not None else {}

    def close(self) -> None:
        if self._clients is not None:
            for c in self._clients:
                self.loop.run_until_complete(c.close())
            self._clients = None
        self.loop.close()

    # ---------------------------------------------------------------------- for the driver
    def take_recovered(self) -> tuple[list[tuple[SampleRequest, Sample]], list[str]]:
        """The failed attempts this backend answered elsewhere since the last call, as
        (request, error sample) pairs, and the lines saying a server went down or came back."""
        got, self._recovered = self._recovered, []
        return got, self.endpoints.take_lines()

    def take_endpoint_counts(self) -> dict[str, dict[str, int]]:
        """Requests sent and failed per server (public URL) since the last call."""
        now = self.endpoints.counts()
        delta = {url: {k: v - self._saved.get(url, {}).get(k, 0) for k, v in c.items()}
                 for url, c in now.items()}
        self._saved = now
        return {url: c for url, c in delta.items() if any(c.values())}

    # --------------------------------------------------------------------------- plumbing
    @property
    def clients(self) -> list[Any]:
        """One OpenAI SDK client per server (retries off: we fail over, the driver retries)."""
        if self._clients is None:
            from openai import AsyncOpenAI, Timeout
            t = Timeout(self.timeout, connect=CONNECT_TIMEOUT_S)
            self._clients = [AsyncOpenAI(base_url=u, api_key=self._api_key, max_retries=0,
                                         timeout=t, http_client=_http_client())
                             for u in self.base_urls]
        return self._clients

    def _target(self, i: int, path: str) -> str:
        """A path on server i: '/v1/...' under its base URL, anything else under its root
        (vLLM's /tokenize, /detokenize)."""
        base = self.base_urls[i]
        if path.startswith("/v1/"):
            return base + path[3:]
        return base.removesuffix("/v1") + path

    async def _send(self, path: str, body: dict[str, Any], parse: Parser,
                    req: SampleRequest | None = None) -> Any:
        """POST `body` to `path` on a server that is up, failing over to the others on a
        failure that asking again can help: parse's value, or a `Failure` (the last try's).
        Failed tries followed by another are recorded against `req` (for the driver)."""
        tried: set[int] = set()
        last: Failure | None = None  # what to answer if no server is left to try
        mine: Failure | None = None  # this request's own last failed try, not yet recorded
        again: Any = None  # the same server once more (a connection it had just closed)
        async with self._sem:
            while True:
                c, again = again or self.endpoints.choose(tried), None
                if c.action == "wait":  # a down server's probe is in flight: its outcome
                    event = self._probes.get(c.index)
                    if event is not None:
                        await event.wait()
                    else:  # never a busy loop, whatever the bookkeeping says
                        await asyncio.sleep(0.1)
                    if not self.endpoints.up(c.index):
                        tried.add(c.index)
                        e = self.endpoints.eps[c.index]
                        last = last or Failure(_named(e.url, e.why), True)
                    continue
                if c.action == "none":
                    return last or Failure("no server is up", True)
                if mine is not None and req is not None:  # its last failure, asked elsewhere
                    self._recovered.append((req, error_samples(req, mine.text, mine.latency,
                                                               mine.retryable)[0]))
                mine = None
                i = c.index
                url = self.endpoints.eps[i].url
                self.endpoints.sent(i, c.probe)
                if c.probe:  # this request's probe (sent again after a closed connection:
                    self._probes.setdefault(i, asyncio.Event())  # still the same one)
                t0 = time.monotonic()
                fail: tuple[str, bool | None] | None
                try:
                    raw = await self.clients[i].post(self._target(i, path), body=body,
                                                     cast_to=bytes)
                    value, fail = parse(raw, url, time.monotonic() - t0)
                except Exception as e:  # noqa: BLE001  (a failed request is data)
                    why, retry = describe_failure(e, self.timeout)
                    if _silent(why) and self._answered_at.get(i, 0.0) > t0:
                        why += HELD  # silent to this request only
                    fail = (f"{url} {why}", retry)
                if fail is None or not _silent(fail[0]):  # the server said something
                    self._last_reply = self._answered_at[i] = time.monotonic()
                text = None if fail is None else _named(url, fail[0])
                if fail is not None and i not in tried and _closed(text):
                    # a kept-alive connection the server closed as it was reused, or a server
                    # that died: asked once more at once, on a new connection, before the
                    # server counts as down (a dead one refuses at once)
                    self.failures += 1
                    self.endpoints.again(i)
                    mine = Failure(text, True, time.monotonic() - t0)
                    tried.add(i)
                    again = c
                    continue
                if fail is None:
                    self.endpoints.answered(i, c.probe)
                else:
                    self.failures += 1
                    self.endpoints.failed(i, _named(url, fail[0]), fail[1] is True, c.probe)
                if c.probe:
                    event = self._probes.pop(i, None)
                    if event is not None:
                        event.set()
                if fail is None:
                    return value
                last = mine = Failure(_named(url, fail[0]), fail[1], time.monotonic() - t0)
                if fail[1] is not True:
                    return last  # asking elsewhere cannot help: the driver decides
                tried.add(i)

    async def _served_model(self) -> str:
        """The model name of the first server that answers /v1/models. Says at once when
        none does; waits `wait_for_server` s for one to listen, `retry_for` s for one that
        listens but is not ready."""
        start = time.monotonic()
        next_say = 0.0
        urls = [e.url for e in self.endpoints.eps]
        while True:
            listening = False
            for url, client in zip(urls, self.clients):
                try:
                    got = await client.get("/models", cast_to=object,
                                           options={"timeout": PROBE_TIMEOUT_S})
                except Exception as e:  # noqa: BLE001  (any failure: say it, try again)
                    why, _ = describe_failure(e, PROBE_TIMEOUT_S, "")
                    if why.startswith(("answered HTTP 401", "answered HTTP 403")):
                        raise ValueError(f"{url} {why}: the server wants an API key: give "
                                         f"the one it was started with (vLLM's --api-key) "
                                         f"as ${API_KEY_ENV} or --api-key") from None
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
                raise ValueError(f"no vLLM server answered at {', '.join(urls)} "
                                 f"within {limit:.0f} s ({last}); start one with "
                                 "maker-local serve, or check --base-url (it ends in /v1)")
            if waited >= next_say:
                next_say = waited + 10.0
                print(f"maker-local: waiting for a vLLM server: {last}; waited {waited:.0f} s,"
                      f" giving up after {limit:.0f} s (nothing has started yet)",
                      file=sys.stderr, flush=True)
            await asyncio.sleep(2.0)

    async def tokenize(self, body: dict[str, Any], req: SampleRequest | None = None
                       ) -> list[int] | Failure:
        """vLLM's /tokenize: the token ids of a prompt or of chat messages, or a Failure."""
        def parse(raw: bytes, url: str, latency: float):
            data, fail = json_reply(raw, url, latency)
            if fail is None:
                ids = data.get("tokens")
                if not isinstance(ids, list) or not all(type(t) is int for t in ids):
                    return None, (f"{url}/tokenize answered {excerpt(raw)}, not token ids",
                                  False)
                return ids, None
            return None, fail

        return await self._send("/tokenize", {"model": self.model, **body}, parse, req)

    async def _end_ids(self, parser: str) -> list[int]:
        """The end-of-thinking marker of `parser` as the servers' tokenizer writes it
        (vLLM's /tokenize), or [] (with a warning) when no server can say: then thought
        tokens come from usage and a reply with no content counts as unended."""
        from ..models.reasoning import markers
        end = markers(parser).end
        ids = await self.tokenize({"prompt": end, "add_special_tokens": False})
        if isinstance(ids, list) and ids:
            return ids
        print(f"maker-local: the server did not tokenize {end!r}; thought tokens are taken "
              "from usage", file=sys.stderr, flush=True)
        return []

    async def _one(self, req: SampleRequest) -> list[Sample]:
        """One request: its samples, or n error samples saying why."""
        path = "/chat/completions" if self.api == "chat" else "/completions"
        body = request_body(req, self.model, self.api, self.reasoning_effort,
                            self.template_kwargs)

        def parse(raw: bytes, url: str, latency: float):
            reads: list[Any] | None = [] if self.harmony else None
            got = parse_body(raw, req, latency, url, self.end_ids, reads)
            if reads and self._reads is not None:
                self._reads += [(rd, s.finish_reason) for rd, s in zip(reads, got)]
            if got and got[0].finish_reason == "error":
                return None, (got[0].error or "failed", got[0].retryable)
            return got, None

        got = await self._send("/v1" + path, body, parse, req)
        if isinstance(got, Failure):
            return error_samples(req, got.text, got.latency, got.retryable)
        return got

    async def _batch(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        self._last_reply = time.monotonic()
        self.endpoints.new_batch()
        watch = asyncio.ensure_future(self._say_stalls(len(requests)))
        try:
            if self.draft is not None:
                return await self.draft.sample(requests)
            if not self.harmony:
                return await asyncio.gather(*(self._one(r) for r in requests))
            return await self._harmony_batch(requests)
        finally:
            watch.cancel()

    async def _harmony_batch(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        """gpt-oss: a batch in which no sample has a channel header, or none reaches the
        final channel, is an engine fault (harmony.fault): its requests fail with one line
        naming the cause, and so does every later batch (the run stops, exit 3)."""
        if self.fault is None:
            self._reads = []
            got = await asyncio.gather(*(self._one(r) for r in requests))
            reads, self._reads = self._reads, None
            self.fault = harmony.fault([rd for rd, _ in reads], [f for _, f in reads],
                                       max((r.max_tokens for r in requests), default=None))
            if self.fault is None:
                return got
        return [error_samples(r, self.fault, retryable=False) for r in requests]

    async def _say_stalls(self, count: int) -> None:
        """A status line when no reply came for STALL_SAY_S (a hung server is said, not
        waited out in silence), and every STALL_SAY_S after: what is waited for, when the
        requests are asked again and when the run stops if no reply comes."""
        said = 0.0
        urls = ", ".join(e.url for e in self.endpoints.eps)
        while True:
            await asyncio.sleep(1.0)
            quiet = time.monotonic() - self._last_reply
            if quiet < said:
                said = 0.0  # replies came again
            if quiet >= said + STALL_SAY_S:
                said = quiet
                print(stall_line(urls, quiet, count, self.timeout, self.retry_for),
                      file=sys.stderr, flush=True)

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        return self.loop.run_until_complete(self._batch(requests))

    def metrics(self) -> dict[str, float]:
        """Counters from each server's /metrics (Prometheus text), summed over servers."""
        return self.loop.run_until_complete(self._metrics())

    async def _metrics(self) -> dict[str, float]:
        import httpx

        out: dict[str, float] = {}
        headers = {"Authorization": f"Bearer {self._api_key}"}
        for url in self.base_urls:
            try:
                async with httpx.AsyncClient(timeout=10.0, headers=headers) as http:
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


def stall_line(urls: str, quiet: float, count: int, timeout: float, retry_for: float) -> str:
    """What a run waits for when a server accepts requests and sends nothing back. The
    requests in flight fail `timeout` s after they were sent, the server is down, and one
    probe (another `timeout` s) decides the rest of the batch; the driver's Retrier then asks
    again, a probe per try, until failures have lasted `retry_for` s; the try under way then
    ends too: at most about 3 * timeout + retry_for s after the replies stopped."""
    stop = 3 * timeout + retry_for
    return (f"maker-local: no reply from {urls} for {quiet:.0f} s ({count:,} requests "
            f"waiting; the server is up but does not answer: a wedged or overloaded engine? "
            f"see its log). Each request is asked again after {timeout:.0f} s without a reply "
            f"(--request-timeout); with no reply at all the run stops in about "
            f"{max(0.0, stop - quiet) / 60:.0f} min (exit 3; --resume continues it)")


def _http_client() -> Any:
    """The SDK's default HTTP client with kept-alive connections retired after KEEPALIVE_S.
    (The SDK builds on httpx or, in newer releases, a fork of it: its own Limits class.)"""
    import importlib

    from openai import DefaultAsyncHttpxClient
    base = next(c for c in DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient")
    http = importlib.import_module(base.__module__.partition(".")[0])
    return DefaultAsyncHttpxClient(limits=http.Limits(
        max_connections=1000, max_keepalive_connections=100, keepalive_expiry=KEEPALIVE_S))


def _silent(text: str) -> bool:
    """Whether a failure is a server's silence (a request that timed out): not a reply, so
    the stall line keeps counting."""
    return "did not answer within" in text


def _closed(text: str) -> bool:
    """Whether a failure is a connection the server closed (reset, or gone before it
    answered), not one it refused or a timeout."""
    return "(connection reset)" in text or "disconnected without" in text


def _named(url: str, text: str) -> str:
    """A failure's text, starting with the server it came from."""
    return text if text.startswith(url) else f"{url} {text}"


def api_key(options: BackendOptions) -> str | None:
    """--api-key, else $MAKER_LOCAL_API_KEY, else none."""
    import os
    return options.api_key or os.environ.get(API_KEY_ENV) or None


def from_options(task: Any, options: BackendOptions) -> VLLMHTTPBackend:
    return VLLMHTTPBackend(
        base_urls=list(options.base_url), model=options.model, api=options.api,
        concurrency=options.concurrency, reasoning_effort=options.reasoning_effort,
        reasoning_parser=options.reasoning_parser,
        chat_template_kwargs=options.chat_template_kwargs, timeout=options.request_timeout,
        retry_for=options.retry_for, api_key=api_key(options),
        draft_sampling=options.draft_sampling)


__all__ = ["VLLMHTTPBackend", "from_options", "describe_failure", "public_url"]
