"""The sim plus the voter reproduce the scaling laws (seeded, within confidence bounds)."""
import math

import numpy as np
import pytest

from maker_local.backends.sim import SimBackend, SimModel
from maker_local.core.types import SampleRequest
from maker_local.voting.scaling import expected_votes, p_step
from maker_local.voting.schedule import Schedule, VoteConfig
from maker_local.voting.seeds import Temperatures
from maker_local.tasks.hanoi import Hanoi


def run(task, model, k, window=64, temps=Temperatures(0.7, 0.7), mode="rounds"):
    sched = Schedule(task, VoteConfig(k=k, window=window, temperatures=temps), mode)
    sim = SimBackend(task, model)
    decided, samples = [], 0
    while not sched.finished:
        reqs = sched.next_batch()
        rows = sched.accept(reqs, sim.sample(reqs))
        decided += rows.decided
        samples += rows.n_samples
    return decided, samples


def independent(error, valid=1.0, seed=0):
    """One wrong answer per step, equal difficulty, no length effect: the formula's world."""
    return SimModel(error=error, valid=valid, spread=0.0, wrong=1, tokens_mean=50,
                    tokens_sigma=0.1, length_slope=0.0, seed=seed)


def test_per_step_error_matches_formula():
    """p = 0.8, k = 3: a step is wrong with probability 1 - 1/(1 + 0.25^3) = 1.54%."""
    task = Hanoi(14)
    decided, samples = run(task, independent(0.2, valid=0.9), k=3)
    n = len(decided)
    wrong = sum(1 for d in decided if d.correct == 0)
    expect = 1 - p_step(0.8, 3)
    sd = math.sqrt(n * expect * (1 - expect))
    assert abs(wrong - n * expect) < 4 * sd, (wrong, n * expect)
    # samples per step: expected votes / valid rate
    per_step = np.mean([d.samples for d in decided])
    assert per_step == pytest.approx(expected_votes(0.8, 3) / 0.9, rel=0.05)


def test_valid_rate_and_error_rate_of_samples():
    task = Hanoi(12)
    sim = SimBackend(task, SimModel(error=0.1, valid=0.8, spread=1.0, seed=3))
    reqs = [SampleRequest(i, task.input_at(i), task.render(task.input_at(i)), 20, 1.0, 10_000,
                          i << 16) for i in range(0, 4000, 2)]
    out = sim.sample(reqs)
    flags = wrong = total = 0
    for req, samples in zip(reqs, out):
        ref = task.reference(req.x)
        for s in samples:
            total += 1
            got = task.parse(s.text, req.x)
            if not hasattr(got, "key"):
                flags += 1
            elif got.key != ref.key:
                wrong += 1
    assert flags / total == pytest.approx(0.2, abs=0.01)
    assert wrong / (total - flags) == pytest.approx(0.1, abs=0.015)


def test_correlated_errors_at_hard_steps():
    """With spread, wrong answers concentrate: a hard step repeats the same wrong pair."""
    task = Hanoi(12)
    sim = SimBackend(task, SimModel(error=0.1, valid=1.0, spread=1.0, wrong=3,
                                    concentration=0.7, seed=1))
    reqs = [SampleRequest(i, task.input_at(i), task.render(task.input_at(i)), 30, 1.0, 10_000,
                          i << 16) for i in range(1000)]
    per_step, modal, all_wrong = [], 0, 0
    for req, samples in zip(reqs, sim.sample(reqs)):
        ref = task.reference(req.x).key
        keys = [task.parse(s.text, req.x).key for s in samples if s.finish_reason == "stop"]
        wrong = [k for k in keys if k != ref]
        per_step.append(len(wrong) / max(1, len(keys)))
        if wrong:
            modal += max(wrong.count(k) for k in set(wrong))
            all_wrong += len(wrong)
    assert modal / all_wrong > 0.6  # most wrong samples repeat the step's favourite mistake
    per_step = np.array(per_step)
    assert per_step.std() > 0.05  # difficulty varies by step ...
    assert (per_step > 0.3).sum() >= 5  # ... and some steps are hard


def test_sim_is_deterministic_and_greedy_repeats():
    task = Hanoi(10)
    sim = SimBackend(task, SimModel(error=0.3, valid=0.7, seed=5))
    x = task.input_at(100)
    req = [SampleRequest(100, x, task.render(x), 8, 0.5, 750, 123456)]
    a, b = sim.sample(req), sim.sample(req)
    assert [s.text for s in a[0]] == [s.text for s in b[0]]
    greedy = [SampleRequest(100, x, task.render(x), 1, 0.0, 750, s) for s in (1, 2, 3)]
    texts = {g[0].text for g in sim.sample(greedy)}
    assert len(texts) == 1


def test_long_outputs_hit_the_cap_and_are_wronger():
    task = Hanoi(12)
    sim = SimBackend(task, SimModel(error=0.05, valid=1.0, spread=0.0, tokens_mean=300,
                                    tokens_sigma=0.5, length_slope=1.0, seed=2))
    reqs = [SampleRequest(i, task.input_at(i), task.render(task.input_at(i)), 40, 1.0, 10_000,
                          i << 16) for i in range(500)]
    lengths, wrong = [], []
    for req, samples in zip(reqs, sim.sample(reqs)):
        ref = task.reference(req.x).key
        for s in samples:
            lengths.append(s.tokens_out)
            wrong.append(task.parse(s.text, req.x).key != ref)
    lengths, wrong = np.array(lengths), np.array(wrong)
    long = lengths > np.percentile(lengths, 80)
    assert wrong[long].mean() > 2 * wrong[~long].mean()
    capped = sim.sample([SampleRequest(1, task.input_at(1), [], 200, 1.0, 200, 99)])[0]
    assert any(s.finish_reason == "length" and s.tokens_out == 200 for s in capped)
    assert all(s.tokens_out <= 200 for s in capped)
