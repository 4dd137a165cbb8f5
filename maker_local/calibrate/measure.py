"""Calibration's measuring: sample random steps through a backend, exactly as a solve would.

Steps are drawn at random across the task's sizes, their inputs built in closed form
(`task.input_at`), and each step is asked for R samples exactly as a solve would ask (same
prompt, constraint, seeds from `sample_seed`). This module runs the backend and nothing
else: `estimate.py` computes the calibration, `files.py` saves it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.types import SampleRequest
from ..voting.redflags import classify
from ..voting.seeds import MAX_RUN_SEED, sample_seed
from ..tasks.base import Parsed


@dataclass
class CalibrationConfig:
    tasks: list[Any]  # one task per size to measure (the task plug-in's grid)
    steps_per_size: int = 100
    samples: int = 10
    temperature: float = 0.1
    max_tokens: int = 4096  # generous: calibration measures the length tail, it does not cut it
    constrained: bool = True
    seed: int = 0
    target: float = 0.95
    run_steps: int = 2**20 - 1

    def check(self) -> None:
        if self.steps_per_size < 1 or self.samples < 2:
            raise ValueError("--steps-per-size must be >= 1 and --samples >= 2 (per-step "
                             "statistics need at least two samples of a step)")
        if not 1 <= len(self.tasks) <= 32:
            raise ValueError(f"calibrate measures 1..32 task sizes (got {len(self.tasks)})")
        if not 0 <= self.seed <= MAX_RUN_SEED >> 5:
            raise ValueError(f"--seed must be in 0..{MAX_RUN_SEED >> 5}")
        if not 0 < self.target < 1 or self.run_steps < 1 or self.max_tokens < 1:
            raise ValueError("--target must be in (0, 1); --run-steps, --max-tokens >= 1")


@dataclass(slots=True)
class Observation:
    """One calibration sample: its vote key (None: red-flagged) and whether it is right, by
    the flag parser and by the repairing one (unconstrained runs)."""

    size: int  # the task's size (its grid for calibrate)
    step: int
    index: int  # the sample's index among the step's samples
    key: str | None
    correct: bool
    flag: str | None
    tokens_in: int
    tokens_out: int
    tokens_reasoning: int
    repaired_key: str | None
    repaired_correct: bool


@dataclass
class Observations:
    """Every sample collected; backend failures are only counted."""

    rows: list[Observation] = field(default_factory=list)
    errors: int = 0


def _run_seed(seed: int, which: int) -> int:
    # step numbers repeat across sizes; mixing the size's place in keeps seeds distinct
    return (seed << 5) | which


def collect(cfg: CalibrationConfig, backend: Any, chunk: int = 256) -> Observations:
    """Sample cfg.samples answers of random steps of each task size through `backend`.

    One backend serves all sizes, so it must read each request's own prompt/input.
    """
    cfg.check()
    rng = np.random.default_rng(cfg.seed)
    obs = Observations()
    for which, task in enumerate(cfg.tasks):
        d = task.size
        total = task.num_steps()
        steps = (np.arange(total) if total <= cfg.steps_per_size
                 else np.sort(rng.choice(total, cfg.steps_per_size, replace=False)))
        reqs = []
        for step in steps.tolist():
            x = task.input_at(step)
            reqs.append(SampleRequest(step, x, task.render(x), cfg.samples, cfg.temperature,
                                      cfg.max_tokens, sample_seed(_run_seed(cfg.seed, which), step, 0),
                                      task.constraint(x) if cfg.constrained else None, 0))
        for i in range(0, len(reqs), chunk):
            batch = reqs[i:i + chunk]
            for req, samples in zip(batch, backend.sample(batch)):
                ref = task.reference(req.x)
                for j, s in enumerate(samples):
                    if s.finish_reason == "error":
                        obs.errors += 1
                        continue
                    got = classify(s, task, req.x)
                    key = got.key if isinstance(got, Parsed) else None
                    rkey = key
                    if not cfg.constrained and key is None and s.finish_reason == "stop":
                        rep = classify(s, task, req.x, repair=True)
                        rkey = rep.key if isinstance(rep, Parsed) else None
                    obs.rows.append(Observation(
                        d, req.step, j, key, key is not None and key == ref.key,
                        None if key else got.reason, s.tokens_in, s.tokens_out,
                        s.tokens_reasoning, rkey, rkey is not None and rkey == ref.key))
    return obs
