"""The engines of a pooled run (voting/pool.py) behind one backend: each request goes to the
engine of the source it names (`SampleRequest.source`), and the answers come back in the
order asked. Sources that share an engine (a prompt pool: one model, several renderings) share
one backend.

The engines of one call work at the same time, one thread each (an engine's own work runs in
its processes or on a server; the thread waits on it): a round takes as long as its slowest
engine, not as long as all of them one after another. Each engine is used by one thread at a
time, and the answers do not depend on which engine finishes first (every request carries
its own seed)."""
from __future__ import annotations

import threading
from typing import Any

from ..core.types import Backend, Sample, SampleRequest


class PoolBackend(Backend):
    name = "pool"

    def __init__(self, backends: list[Any], engine_of: list[int]):
        """`backends`: one per engine; `engine_of[source]`: the index of its engine."""
        if not backends or any(not 0 <= e < len(backends) for e in engine_of):
            raise ValueError("every source of a pool needs an engine")
        self.backends, self.engine_of = backends, list(engine_of)
        self.reads_prompts = any(b.reads_prompts for b in backends)
        self.default_window = min(b.default_window for b in backends)

    def uses_draft_for(self, source: int) -> bool:
        return self.backends[self.engine_of[source]].uses_draft

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(self.engine_of[r.source], []).append(i)
        got = self._at_once({e: [requests[i] for i in idxs] for e, idxs in groups.items()})
        out: list[list[Sample]] = [[] for _ in requests]
        for engine, idxs in groups.items():
            for i, samples in zip(idxs, got[engine]):
                out[i] = samples
        return out

    def _at_once(self, work: dict[int, list[SampleRequest]]) -> dict[int, Any]:
        """Each engine's `sample` on its requests, all at once: the largest share in this
        thread (a Ctrl-C stops it as before), the others in daemon threads (an interrupted
        run does not wait for them at exit). An engine's error is raised here."""
        order = sorted(work, key=lambda e: -len(work[e]))
        got: dict[int, Any] = {}
        failed: dict[int, BaseException] = {}

        def run(e: int) -> None:
            try:
                got[e] = self.backends[e].sample(work[e])
            except BaseException as err:  # noqa: BLE001  (raised again in the caller)
                failed[e] = err

        threads = [threading.Thread(target=run, args=(e,), name=f"maker-engine-{e}",
                                    daemon=True) for e in order[1:]]
        for t in threads:
            t.start()
        try:
            got[order[0]] = self.backends[order[0]].sample(work[order[0]])
        except Exception:
            for t in threads:  # no engine is left working for a call that is over
                t.join()
            raise
        for t in threads:
            t.join()
        for e in order:
            if e in failed:
                raise failed[e]
        return got

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "engines": [b.describe() for b in self.backends],
                "engine_of": self.engine_of}

    def close(self) -> None:
        for b in self.backends:
            b.close()
