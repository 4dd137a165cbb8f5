"""A statistical model of an LLM, for tests and for planning at million-step scale.

It writes text in the task's output format (the task's hints: `text` of an answer,
`wrong_answers`, `malformed`, `sim_prose`) and is right with probability p per sample, with:
- per-step difficulty: step i's error rate is error * w_i, w_i drawn with mean 1 (`spread`);
  or, with `correlation` rho > 0, a beta with mean `error` and intraclass correlation rho
  (`maker_local.voting.correlation`: rho is the correlation between two votes of one step; the
  paper's Figure 8 at 1,048,575 steps fits rho ~ 0.008, scripts/fig8.py);
- correlated wrong answers: a wrong sample gives one of the step's few plausible wrong answers,
  the first one most of the time (`concentration`), so a hard step sees the same wrong pair again
  and again;
- format failures at rate 1 - valid (the task's `malformed`: never a valid answer);
- a long-tailed (log-normal) output length, more often wrong when long, capped at max_tokens
  with finish_reason "length".
Greedy samples (temperature 0) depend only on the step, so repeated greedy samples agree.
Everything is a pure function of (sim seed, step, sample seed): seeded and deterministic.
It needs the task's reference answer for its input.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..core.argtypes import at_least, number
from ..core.gcpause import gc_paused
from ..core.types import Backend, Sample, SampleRequest
from .options import BackendOptions

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised (uint64 arithmetic wraps)."""
    z = z + _GOLD
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniforms(keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in (0, 1), one per key, independent across streams."""
    z = _mix(keys ^ np.uint64((stream * 0xD1B54A32D192ED03) & 0xFFFFFFFFFFFFFFFF))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


_NO_ANSWER = "There is no answer for this input."


@dataclass
class SimModel:
    """Parameters of the simulated model."""

    error: float = 0.0022  # mean per-sample error among well-formed samples
    valid: float = 0.97  # share of samples that are well formed
    spread: float = 1.0  # 0: all steps equally hard; 1: per-step error ~ error * Exp(1)
    wrong: int = 3  # distinct wrong answers per step
    concentration: float = 0.7  # share of wrong samples that give the step's first wrong answer
    tokens_mean: float = 300.0  # median output tokens
    tokens_sigma: float = 0.35  # log-normal spread of output tokens
    length_slope: float = 0.5  # error odds grow by e^slope per sigma of length
    seed: int = 0
    # > 0: per-step error ~ beta(mean error, ICC correlation) instead of the spread model
    correlation: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.error < 1:
            raise ValueError(f"--sim-error must be in [0, 1) (got {self.error})")
        if not 0 < self.valid <= 1:
            raise ValueError(f"--sim-valid must be in (0, 1] (got {self.valid})")
        if self.wrong < 1:
            raise ValueError("the sim needs at least one wrong answer per step")
        if not 0 <= self.correlation < 1:
            raise ValueError(f"--sim-correlation must be in [0, 1) (got {self.correlation})")


class SimBackend(Backend):
    name = "sim"
    reads_prompts = False  # it asks the task for what it needs: the schedule renders nothing
    default_window = 131072  # the sim is cheap per step: wide windows mean few rounds

    def __init__(self, task: Any, model: SimModel):
        self.task, self.model = task, model
        self._quantiles: tuple[np.ndarray, np.ndarray] | None = None

    def describe(self) -> dict[str, Any]:
        d = asdict(self.model)
        if not d["correlation"]:  # runs from before the correlation model keep their identity
            del d["correlation"]
        return {"backend": self.name, **d}

    def close(self) -> None:
        pass

    def accuracy(self) -> float:
        """Per-sample accuracy p that `--k auto` plans with (the sim's mean)."""
        return 1.0 - self.model.error

    def step_errors(self, steps: np.ndarray) -> np.ndarray:
        """Per-step error rate (before the length effect)."""
        m = self.model
        u = uniforms(steps.astype(np.uint64) ^ np.uint64(m.seed << 40), 1)
        if m.correlation > 0:
            return self._beta_quantile(u)
        return np.minimum(0.95, m.error * ((1 - m.spread) - m.spread * np.log(u)))

    def _beta_quantile(self, u: np.ndarray) -> np.ndarray:
        """The beta's error rate at cumulative probability u: its quadrature nodes taken as
        point masses (neighbours 0.5% apart in log-odds); below the grid, 0."""
        if self._quantiles is None:
            from ..voting.steperrors import StepErrors
            q, w, below = StepErrors(self.model.error, self.model.correlation).nodes()
            self._quantiles = (np.append(0.0, q), below + np.cumsum(np.append(0.0, w)))
        q, edges = self._quantiles  # node j holds the mass edges[j]..edges[j + 1]
        return q[np.minimum(np.searchsorted(edges, u, side="right"), q.size - 1)]

    @gc_paused()
    def sample(self, requests: list[SampleRequest]) -> list[list[Sample]]:
        m, task = self.model, self.task
        ns = np.fromiter((r.n for r in requests), np.int64, len(requests))
        steps = np.repeat(np.fromiter((r.step for r in requests), np.int64, len(requests)), ns)
        offs = np.arange(len(steps)) - np.repeat(np.cumsum(ns) - ns, ns)
        seeds = np.repeat(np.fromiter((r.seed for r in requests), np.int64, len(requests)), ns)
        greedy = np.repeat(np.fromiter((r.temperature == 0 for r in requests), bool,
                                       len(requests)), ns)
        keys = np.where(greedy, steps, seeds + offs).astype(np.uint64)
        keys ^= np.where(greedy, np.uint64(0xA5A5 << 48), np.uint64(0)) ^ np.uint64(m.seed << 40)
        u_valid, u_err, u_pick, u_kind = (uniforms(keys, s) for s in (2, 3, 4, 5))
        z = np.sqrt(-2 * np.log(uniforms(keys, 6))) * np.cos(2 * np.pi * uniforms(keys, 7))
        length = np.maximum(1, m.tokens_mean * np.exp(m.tokens_sigma * z)).astype(np.int64)
        lift = np.exp(m.length_slope * z - m.length_slope**2 / 2)
        wrong = u_err < np.minimum(1.0, self.step_errors(steps) * lift)
        bad_format = u_valid >= m.valid
        pick = np.where(u_pick < m.concentration, 0,
                        1 + (u_pick * 1e6).astype(np.int64) % max(1, m.wrong - 1))

        out: list[list[Sample]] = []
        prose = getattr(task, "sim_prose", "")  # the task's words before an answer
        # prompt tokens: chars/4 of the batch's first prompt (a task's prompts differ by a few
        # characters at most; rendering every prompt would dominate the sim's cost)
        tin = sum(len(m["content"]) for m in task.render(requests[0].x)) // 4 if requests else 0
        caps = np.repeat(np.fromiter((r.max_tokens for r in requests), np.int64,
                                     len(requests)), ns)
        # requests whose samples are all right, well formed and under the cap (most of them)
        odd = np.concatenate(([0], np.cumsum(bad_format | wrong | (length > caps))))
        ends = np.cumsum(ns)
        plain = (odd[ends] == odd[ends - ns]).tolist()
        bad_format, wrong = bad_format.tolist(), wrong.tolist()
        pick, u_kind, length = pick.tolist(), u_kind.tolist(), length.tolist()
        pos = 0
        last_x: Any = None
        for r, easy in zip(requests, plain):
            if r.x is not last_x:  # a step's requests are adjacent: one right text per step
                last_x = r.x
                ref = task.reference(r.x)  # the sim's hints come from the task alone
                # a chain that left the rules can reach a state with no right answer at all
                right = _NO_ANSWER if ref is None else prose + task.text(ref.answer)
            end = pos + r.n
            if easy and right is not _NO_ANSWER:
                out.append([Sample(right, "stop", tin, n_out) for n_out in length[pos:end]])
                pos = end
                continue
            wrongs: list[str] | None = None
            group = []
            cap = r.max_tokens
            for i in range(pos, end):
                if bad_format[i] or right is _NO_ANSWER:
                    text = right if right is _NO_ANSWER else task.malformed(right, u_kind[i])
                elif wrong[i]:
                    if wrongs is None:
                        wrongs = [prose + task.text(a) for a in task.wrong_answers(r.x, m.wrong)]
                    text = wrongs[min(pick[i], len(wrongs) - 1)] if wrongs else right
                else:
                    text = right
                n_out = length[i]
                if n_out > cap:
                    group.append(Sample(text[: len(text) * cap // n_out], "length", tin, cap))
                else:
                    group.append(Sample(text, "stop", tin, n_out))
            pos = end
            out.append(group)
        return out


def add_flags(p: argparse.ArgumentParser) -> None:
    """The sim's own flags (`BACKENDS["sim"].flags`), read into `SimOptions`; its ranges are
    SimModel's, refused while the line is parsed."""
    g = p.add_argument_group("sim backend")
    g.add_argument("--sim-error", type=number(0, 1, hi_open=True), default=None,
                   help="mean per-sample error among valid samples, in [0, 1) "
                   "(default 0.0022)")
    g.add_argument("--sim-valid", type=number(0, 1, lo_open=True), default=None,
                   help="share of well-formed samples, in (0, 1] (default 0.97)")
    g.add_argument("--sim-spread", type=number(0, 1), default=None,
                   help="per-step difficulty spread, 0..1 (default 1)")
    g.add_argument("--sim-wrong", type=at_least(1), default=None,
                   help="distinct wrong answers per step; the first is the most frequent "
                   "(default 3)")
    g.add_argument("--sim-concentration", type=number(0, 1), default=None,
                   help="share of wrong samples that give the step's first wrong answer, "
                   "0..1 (default 0.7)")
    g.add_argument("--sim-correlation", type=number(0, 1, hi_open=True), default=None,
                   metavar="RHO",
                   help="within-step correlation of errors: per-step error ~ beta with mean "
                   "--sim-error and this ICC, in [0, 1), instead of --sim-spread "
                   "(default 0: off)")


def accuracy(options: BackendOptions) -> float:
    """The per-sample accuracy `--k auto` plans with for a sim built from `options`."""
    return 1.0 - SimModel(seed=options.seed, **options.sim.given()).error


def from_options(task: Any, options: BackendOptions) -> SimBackend:
    return SimBackend(task, SimModel(seed=options.seed, **options.sim.given()))
