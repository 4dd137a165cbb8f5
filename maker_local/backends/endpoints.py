"""Which of a backend's servers (endpoints) to send the next request to: pure state, no I/O.

A server that fails a request in a way that asking again can help (connection refused or
reset, a timeout, 408/425/429, 5xx, an aborted request) is *down*: while other servers are
up it gets no requests, and the request goes to one of them with the same body (the same
seeds, so the same samples). From `retry_at` on (1, 2, 4 ... 30 s after the failures in a
row) a down server gets one request at a time as a probe; the first that succeeds makes it
up again. When every server is down, a request probes the one that is due first at once (the
driver's backoff, `failures.Retrier`, paces those tries), and requests that find a probe in
flight wait for its outcome instead of piling onto a server that may hang.

A failure that asking again cannot help (other 4xx, a malformed reply) says nothing about the
server being up, and fails the request as before.

Counted per server: requests sent and requests that failed (HTTP exchanges, every kind); and
the lines a user should see when a server goes down or comes back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

MAX_COOLDOWN_S = 30.0


def public_url(url: str) -> str:
    """The URL without user:password@ (what may be printed and stored)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@dataclass
class Endpoint:
    url: str  # public_url: safe to print and store
    requests: int = 0   # HTTP requests sent
    failures: int = 0   # of those, failed
    inflight: int = 0
    fails: int = 0      # retryable failures in a row; 0 = up
    retry_at: float = 0.0
    down_since: float = 0.0
    probing: bool = False
    probed: bool = False  # probed in this batch (nothing up: one probe per batch, see choose)
    why: str = ""       # its last failure


@dataclass(frozen=True)
class Choice:
    """What a request should do: `send` to endpoint `index` (`probe`: a down one), `wait` for
    the probe in flight at `index`, or `none`: every server it may still try is down."""
    action: str
    index: int | None = None
    probe: bool = False


@dataclass
class Endpoints:
    urls: list[str]
    clock: Callable[[], float] = time.monotonic
    eps: list[Endpoint] = field(init=False)
    lines: list[str] = field(init=False, default_factory=list)  # for the user, in order

    def __post_init__(self) -> None:
        self.eps = [Endpoint(public_url(u)) for u in self.urls]

    def up(self, i: int) -> bool:
        return self.eps[i].fails == 0

    def choose(self, tried: set[int]) -> Choice:
        """Where a request that already failed at the endpoints `tried` goes next."""
        now = self.clock()
        eps = [(i, e) for i, e in enumerate(self.eps) if i not in tried]
        due = [(e.retry_at, i) for i, e in eps if e.fails and not e.probing and now >= e.retry_at]
        if due:  # a down server's turn for one request: how a server that returns is used again
            return Choice("send", min(due)[1], probe=True)
        up = [(e.inflight, i) for i, e in eps if not e.fails]
        if up:  # the least loaded
            return Choice("send", min(up)[1])
        probing = [i for i, e in eps if e.probing]
        if probing:
            return Choice("wait", probing[0])
        unprobed = [(e.retry_at, i) for i, e in eps if not e.probed]
        if not any(e.fails == 0 for e in self.eps) and unprobed:
            # nothing is up: ask the server due first now, rather than fail without asking;
            # once per batch (a server that let its probe time out is not asked again by
            # each request of the batch, one timeout after another: the batch fails and
            # the driver's backoff paces the next tries)
            return Choice("send", min(unprobed)[1], probe=True)
        return Choice("none")

    def new_batch(self) -> None:
        """A batch of requests starts (the driver's first try or one of its retries)."""
        for e in self.eps:
            e.probed = False

    def sent(self, i: int, probe: bool) -> None:
        e = self.eps[i]
        e.requests += 1
        e.inflight += 1
        if probe:
            e.probing = e.probed = True

    def answered(self, i: int, probe: bool = False) -> None:
        """Endpoint i answered (well, or with a failure that says nothing about it being up);
        `probe`: the request was its probe. Only a probe's own outcome ends the probe: a
        request sent before the server went down that comes back meanwhile does not, or a
        second probe would go out beside the first."""
        e = self.eps[i]
        e.inflight -= 1
        if probe:
            e.probing = False
        if e.fails:
            down = self.clock() - e.down_since
            self.lines.append(f"maker-local: {e.url} answers again (down {down:.0f} s); it "
                              "gets requests again")
        e.fails = 0

    def again(self, i: int) -> None:
        """Endpoint i failed a request that is sent to it once more at once (a connection
        it had closed): counted, nothing else decided yet."""
        e = self.eps[i]
        e.failures += 1
        e.inflight -= 1

    def failed(self, i: int, why: str, down: bool, probe: bool = False) -> None:
        """Endpoint i failed a request (`probe`: one sent while it was down); `down`: in a
        way that asking elsewhere can help."""
        e = self.eps[i]
        e.failures += 1
        if not down:
            self.answered(i, probe)
            return
        e.inflight -= 1
        if probe:
            e.probing = False
        now = self.clock()
        if e.fails and not probe:
            return  # sent before it went down: the same outage, not one more in a row
        if e.fails == 0:
            e.down_since = now
            others = [o.url for o in self.eps if o is not e and o.fails == 0]
            where = (f"its requests go to {', '.join(others)} (same seeds)" if others else
                     "no other server is up: requests are asked again with backoff")
            said = why if why.startswith(e.url) else f"{e.url} {why}"
            self.lines.append(f"maker-local: {said}: {where}; it is tried again from time "
                              "to time")
        e.fails += 1
        e.why = why
        e.retry_at = now + min(MAX_COOLDOWN_S, 2.0 ** (e.fails - 1))

    def counts(self) -> dict[str, dict[str, int]]:
        """Requests and failed requests per server (public URL) so far."""
        out: dict[str, dict[str, int]] = {}
        for e in self.eps:
            c = out.setdefault(e.url, {"requests": 0, "failures": 0})
            c["requests"] += e.requests
            c["failures"] += e.failures
        return out

    def take_lines(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines
