"""The estimators held to known truths (issue 28): a small sweep of the sim's statistical
model (beta of per-step error rates plus hopeless steps, parameters set) through calibrate's,
report's and bench's estimators, counting how often each stated 95% interval covers the
truth. The full sweep is scripts/coverage.py (its table: results/coverage/)."""
import numpy as np
import pytest

from maker_local.analysis.coverage import calibrate_once, cell, run_once, truth
from maker_local.voting.steperrors import StepErrors

CELLS = [StepErrors(e, rho) for rho in (0.0, 0.05, 0.2) for e in (0.002, 0.05)] + [
    StepErrors(0.01, 0.0, 0.005, 0.3), StepErrors(0.01, 0.05, 0.005, 0.3)]
SEEDS = 20


@pytest.fixture(scope="module")
def sweep():
    with np.errstate(all="raise", under="ignore"):
        return [cell(d, SEEDS, steps=1000, run_steps=5000, seed=i) for i, d in enumerate(CELLS)]


@pytest.mark.parametrize("name", ["calibrate p", "calibrate rho", "calibrate collisions",
                                  "report rho", "bench rho", "bench collisions"])
def test_each_stated_95_percent_interval_covers_the_truth(sweep, name):
    hits = sum(c["coverage"][name] * c["intervals"][name] for c in sweep)
    n = sum(c["intervals"][name] for c in sweep)
    # 160 intervals at a true 95%: below 88% is 4 standard deviations off
    assert n >= 0.9 * SEEDS * len(CELLS) and hits / n >= 0.88, (name, hits / n)
    # and no setting is far off on its own (20 draws: 70% is 5 sd below 95%)
    assert min(c["coverage"][name] for c in sweep) >= 0.7, [
        (c["error"], c["rho"], c["hopeless"], c["coverage"][name]) for c in sweep]


def test_the_hopeless_bound_holds(sweep):
    for c in sweep:
        assert c["coverage"]["calibrate hopeless <= at_most"] >= 0.9
        assert c["coverage"]["bench hopeless <= at_most"] >= 0.9


def test_bench_reads_independent_errors_as_independent():
    """The collision excess from each step's first k votes: 1 for independent errors (it
    was 2.5 when all of a step's votes predicted the independent rate), 1 + rho (1-e)/e for
    the beta."""
    rng = np.random.default_rng(11)
    for d in (StepErrors(0.02), StepErrors(0.02, 0.05)):
        got = np.mean([run_once(d, 20000, 3, rng)[1]["excess"] for _ in range(6)])
        assert got == pytest.approx(truth(d).excess, rel=0.15), (d, got)


def test_calibrate_p_interval_counts_a_steps_votes_as_a_cluster():
    """rho 0.2: ten votes of one step are worth ~3.5 independent ones; plain Wilson over
    all votes would cover p well under 95% of the time."""
    rng = np.random.default_rng(3)
    d = StepErrors(0.05, 0.2)
    p = 1 - truth(d).error
    hits = [c["p_low"] <= p <= c["p_high"] for c in
            (calibrate_once(d, 1000, 10, rng) for _ in range(40))]
    assert np.mean(hits) >= 0.85
