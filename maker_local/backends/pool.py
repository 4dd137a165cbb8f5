"""The engines of a pooled run (engine/pool.py) behind one backend: each request goes to the
engine of the source it names (`SampleRequest.source`), and the answers come back in the
order asked. Sources that share an engine (a prompt pool: one model, several renderings) share
one backend."""
from __future__ import annotations

from typing import Any

from ..core.types import Sample, SampleRequest


class PoolBackend:
    name = "pool"

    def __init__(self, backends: list[Any], engine_of: list[int]):
        """`backends`: one per engine; `engine_of[source]`: the index of its engine."""
        if not backends or any(not 0 <= e < len(backends) for e in engine_of):
            raise ValueError("every source of a pool needs an engine")
        self.backends, self.engine_of = backends, list(engine_of)
        self.reads_prompts = any(getattr(b, "reads_prompts", True) for b in backends)
        self.default_window = min(getattr(b, "default_window", 4096) for b in backends)

    def uses_draft_for(self, source: int) -> bool:
        return bool(getattr(self.backends[self.engine_of[source]], "uses_draft", False))

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(self.engine_of[r.source], []).append(i)
        out: list[list[Sample]] = [[] for _ in requests]
        for engine, idxs in groups.items():
            got = self.backends[engine].sample([requests[i] for i in idxs])
            for i, samples in zip(idxs, got):
                out[i] = samples
        return out

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "engines": [b.describe() for b in self.backends],
                "engine_of": self.engine_of}

    def close(self) -> None:
        for b in self.backends:
            b.close()
