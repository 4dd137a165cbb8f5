"""An example backend, in one file: every sample is the task's reference answer (a model that
is always right). What it takes to add a backend: this module (a class that inherits the
`Backend` protocol and sets `name`, `sample` and `describe`, overriding the protocol's other
members where it differs, here `reads_prompts`; and a `from_options(task, options)`) and one
line in `maker_local.backends.BACKENDS`; tests/backends/test_backend_registry.py adds that line."""
from __future__ import annotations

from typing import Any

from maker_local.core.types import Backend, Sample, SampleRequest


class Oracle(Backend):
    name = "oracle"
    reads_prompts = False  # it asks the task, not a prompt: the schedule renders none

    def __init__(self, task: Any):
        self.task = task

    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        out = []
        for r in requests:
            text = self.task.text(self.task.reference(r.x).answer)
            out.append([Sample(text, "stop", tokens_out=len(text)) for _ in range(r.n)])
        return out

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}



def from_options(task: Any, options: Any) -> Oracle:
    return Oracle(task)
