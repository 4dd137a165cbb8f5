"""Backend failures: asked again with the same seeds, or the run stops with one line.

A backend answers a failed request with error samples (`finish_reason == "error"`) that say
what failed and whether asking again can help (`Sample.retryable`). `Retrier.sample` asks
the failed requests of a round again, unchanged (same step, vote index and seed), until
every request is answered, so the schedule only ever sees answers and a run that met
failures records exactly the votes of one that did not. Meanwhile a status line on stderr says
what failed, since when, and when the next try is.

- retryable (connection refused or reset, timeout, 408/429/5xx): backoff 1, 2, 4 ... 30 s,
  for up to `retry_for` seconds of failing in a row; then the run stops;
- not retryable (other 4xx, malformed or inconsistent replies) or unknown: asked again
  `fatal_after - 1` times (a proxy hiccup passes), then the run stops.

A stop is a `BackendFailed` whose message is one line: the server, the reply, what to do.
Every failed attempt can be counted (`on_failure`, e.g. into the ledger's `failures` table),
also those a backend answered elsewhere by itself (vllm-http over several servers fails over
to another server: `take_recovered` hands them over with the lines that say a server went
down or came back). Requests and failures per server go to the ledger's meta table
(`save_endpoint_counts`, key `endpoints`), where `maker-local report` reads them.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

from ..core.types import Sample, SampleRequest
from ..store.ledger import ENDPOINTS_META  # the ledger's meta key report reads too

RETRY_FOR_S = 600.0  # retryable failures in a row for this long stop the run
FATAL_AFTER = 3      # attempts that end in a non-retryable failure before the run stops
MAX_BACKOFF_S = 30.0


class RunStopped(Exception):
    """A run stopped early because going on cannot help; the message is one line saying
    what to do (exit code 3). The ledger holds every round before."""


class BackendFailed(RunStopped):
    """The backend keeps failing."""


class FlaggedOut(RunStopped):
    """Nearly every sample is red-flagged: the model cannot answer these inputs as asked."""


FLAGGED_OUT_SAMPLES = 500   # judged after this many samples of a run (this session) ...
FLAGGED_OUT_SHARE = 0.99    # ... with at least this share red-flagged


def flagged_out(samples: int, valid: int, by_reason: dict[str, int]) -> FlaggedOut | None:
    """A FlaggedOut when nearly all of at least FLAGGED_OUT_SAMPLES samples were flagged."""
    if samples < FLAGGED_OUT_SAMPLES or samples - valid < FLAGGED_OUT_SHARE * samples:
        return None
    top = ", ".join(f"{k} {n:,}" for k, n in sorted(by_reason.items(), key=lambda kv: -kv[1]))
    hint = ("raise --max-tokens or check the model's prompt --style" if
            max(by_reason, key=by_reason.get, default="") == "length" else
            "check --style, and the task's size against the sizes the model was trained for "
            "(its card)")
    return FlaggedOut(f"stopped: {samples - valid:,} of the {samples:,} samples so far were "
                      f"red-flagged ({top}): the model cannot answer these inputs as asked; "
                      f"{hint}. The ledger holds every round: --resume continues it")


def first_error(samples: list[Sample]) -> Sample | None:
    """The first error sample of a request's answer, or None when it was answered."""
    for s in samples:
        if s.finish_reason == "error":
            return s
    return None


def backoff(attempt: int, retryable: bool) -> float:
    """Seconds before try `attempt + 1` (attempt >= 1)."""
    if not retryable:
        return 1.0
    return min(MAX_BACKOFF_S, 2.0 ** (attempt - 1))


def advice(error: Sample, backend: str) -> str:
    """What a user can do about a failure that stopped the run."""
    msg = error.error or ""
    if "malformed reply" in msg:
        return ("is --base-url a vLLM server's OpenAI API (ending in /v1) and does it run a "
                "vLLM this version supports?")
    if "HTTP 401" in msg or "HTTP 403" in msg:
        return ("the server wants another API key: give the one it was started with as "
                "$MAKER_LOCAL_API_KEY or --api-key")
    if "HTTP 4" in msg:
        return ("the server refused the requests: check --model, --api and --max-tokens "
                "against the server (its log says why)")
    if error.retryable:
        return "check that the server is up (maker-local serve, its log) and reachable"
    return f"see the {backend} backend's log above for the cause"


class Retrier:
    """Wraps a backend: `sample` returns only answers (no error samples), or raises
    `BackendFailed`."""

    def __init__(self, backend: Any, retry_for: float = RETRY_FOR_S,
                 fatal_after: int = FATAL_AFTER,
                 status: Callable[[str], None] | None = None,
                 on_failure: Callable[[list[tuple[SampleRequest, Sample]]], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time,
                 then: str = "The ledger holds every answered round: continue with --resume "
                             "once this is fixed"):
        self.backend, self.retry_for, self.fatal_after = backend, retry_for, fatal_after
        self.then = then  # the end of a stop's message: what happens to the work so far
        self.status = status or (lambda line: print(line, file=sys.stderr, flush=True))
        self.on_failure, self.sleep, self.clock = on_failure, sleep, clock
        self.failed_requests = 0  # failed attempts at requests, over the whole run

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        results = list(self._ask(requests))
        todo = [i for i, r in enumerate(results) if first_error(r) is not None]
        since = None
        attempt = hard = 0
        while todo:
            now = self.clock()
            since = now if since is None else since
            errors = [(requests[i], first_error(results[i])) for i in todo]
            self.failed_requests += len(errors)
            if self.on_failure is not None:
                self.on_failure(errors)
            worst = next((e for _, e in errors if e.retryable is not True), errors[0][1])
            attempt += 1
            if worst.retryable is not True:
                hard += 1
                if hard >= self.fatal_after:
                    raise BackendFailed(self._stop(worst, f"{hard} times in a row"))
            elif now - since >= self.retry_for:
                raise BackendFailed(self._stop(worst, f"for {now - since:.0f} s"))
            wait = backoff(attempt, worst.retryable is True)
            clock = time.strftime("%H:%M:%S", time.localtime(since))
            self.status(f"maker-local: {len(todo)} of {len(requests)} requests failed: "
                        f"{worst.error}; failing since {clock} "
                        f"({now - since:.0f} s); next try in {wait:.0f} s (same seeds)")
            self.sleep(wait)
            again = self._ask([requests[i] for i in todo])
            for i, got in zip(todo, again):
                results[i] = got
            todo = [i for i in todo if first_error(results[i]) is not None]
        if attempt:
            self.status(f"maker-local: answered after {attempt} retries "
                        f"({self.clock() - since:.0f} s); continuing")
        return results

    def _ask(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        """The backend's answers; the failures it recovered from itself are counted (never
        votes) and its lines about servers shown."""
        results = self.backend.sample(requests)
        recovered, lines = self.backend.take_recovered()
        for line in lines:
            self.status(line)
        if recovered:
            self.failed_requests += len(recovered)
            if self.on_failure is not None:
                self.on_failure(recovered)
        return results

    def _stop(self, error: Sample, how: str) -> str:
        return f"stopped: {error.error} ({how}); {advice(error, self.backend.name)}. {self.then}"


class Retrying:
    """A backend whose `sample` answers every request (asking failed ones again, as
    `Retrier`) or raises BackendFailed; everything else is the wrapped backend's."""

    def __init__(self, backend: Any, **options: Any):
        self.inner = backend
        self.retrier = Retrier(backend, **options)

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        return self.retrier.sample(requests)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def save_endpoint_counts(ledger: Any, backend: Any) -> None:
    """Add the requests and failures per server that `backend` counted since the last call
    (`take_endpoint_counts`; backends with one engine have none) to the ledger's, which
    outlive a resume. Best effort bookkeeping: not part of the ledger's checksums."""
    new = backend.take_endpoint_counts()
    if not new:
        return
    stored = json.loads(ledger.meta(ENDPOINTS_META) or "{}")
    for url, counts in new.items():
        have = stored.setdefault(url, {})
        for key, n in counts.items():
            have[key] = have.get(key, 0) + n
    ledger.set_meta(ENDPOINTS_META, json.dumps(stored, sort_keys=True))
