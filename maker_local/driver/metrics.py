"""Live counters of a run in Prometheus text format, on a local port; off unless asked for.

`Metrics.on_round(rows)` takes each round's `RoundRows` (pass it as `solve(..., on_round=...)`)
and `start(port)` serves GET /metrics on 127.0.0.1 only: these are a local run's numbers, not a
public service. Counters start at zero in each process (a resumed run counts from its resume;
the ledger stays the record). Each `Metrics` has its own registry, so two runs in one process
(or tests) never share counters. Needs the optional `prometheus_client` package.
"""
from __future__ import annotations

from typing import Any

from ..voting.chain import Tally
from ..tasks.base import REASONS

PREFIX = "maker"


class Metrics:
    """Counters fed from voting rounds, served by prometheus_client."""

    def __init__(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge
        except ImportError:
            raise ImportError("--metrics-port needs prometheus_client: pip install "
                              "prometheus_client (or maker-local[metrics])") from None
        self.registry = reg = CollectorRegistry()

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Any:
            return Counter(f"{PREFIX}_{name}", doc, labels, registry=reg)

        self.steps = counter("steps_decided", "steps whose vote is final")
        self.samples = counter("samples", "samples received from the backend")
        self.valid = counter("samples_valid", "samples that passed the red flags (votes)")
        self.flags = counter("samples_flagged", "red-flagged samples by reason", ("reason",))
        self.tokens = counter("tokens", "tokens of all samples by kind", ("kind",))
        self.errors = counter("errors", "decided steps that disagree with the reference")
        self.divergences = counter("divergences", "decisions that left the draft trajectory")
        self.votes = counter("votes", "valid votes of decided steps")
        self.rounds = counter("rounds", "voting rounds completed")
        self.round = Gauge(f"{PREFIX}_round", "index of the last completed round", registry=reg)
        for r in REASONS:  # every reason shows from the start, at 0
            self.flags.labels(reason=r)
        for k in ("in", "out", "reasoning"):
            self.tokens.labels(kind=k)
        self._server: Any = None
        self._thread: Any = None

    def on_round(self, rows: Any) -> None:
        """Add one round's rows (a `maker_local.voting.schedule.RoundRows`)."""
        t = Tally.of(rows)
        self.rounds.inc()
        self.round.set(rows.round)
        self.samples.inc(t.samples)
        self.valid.inc(t.valid)
        for reason, n in t.flags.items():
            self.flags.labels(reason=reason).inc(n)
        self.tokens.labels(kind="in").inc(t.tokens_in)
        self.tokens.labels(kind="out").inc(t.tokens_out)
        self.tokens.labels(kind="reasoning").inc(t.tokens_reasoning)
        self.steps.inc(t.decided)
        self.votes.inc(t.votes)
        self.divergences.inc(t.divergences)
        self.errors.inc(t.errors)

    def text(self) -> str:
        """The exposition text that GET /metrics returns."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")

    def start(self, port: int, addr: str = "127.0.0.1") -> int:
        """Serve /metrics on addr:port (port 0 picks a free one); returns the port."""
        from prometheus_client import start_http_server

        if self._server is not None:
            raise RuntimeError("metrics server already started")
        try:
            self._server, self._thread = start_http_server(port, addr, registry=self.registry)
        except OSError as e:
            raise OSError(f"cannot serve metrics on {addr}:{port} ({e.strerror}); choose "
                          "another --metrics-port") from None
        return int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving (the counters keep their values)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None
