import math

import numpy as np
import pytest

from maker_local.voting.scaling import expected_votes, k_min, p_full, p_step, plan
from maker_local.voting.rules import AheadByK

S = 1_048_575


@pytest.mark.parametrize("error,k", [(0.0022, 3), (0.0358, 6), (0.3571, 29), (0.2342, 15),
                                     (0.0018, 3)])
def test_paper_table_k_min(error, k):
    assert k_min(1 - error, S, 0.95) == k


def test_k_min_is_minimal():
    for p in (0.6, 0.8, 0.95, 0.999):
        k = k_min(p, S, 0.95)
        assert p_full(p, k, S) >= 0.95
        assert k == 1 or p_full(p, k - 1, S) < 0.95


def test_formulas():
    assert p_step(0.8, 3) == pytest.approx(1 / (1 + 0.25**3))
    assert p_full(0.8, 3, 10) == pytest.approx(p_step(0.8, 3) ** 10)
    assert expected_votes(1.0, 4) == 4
    # the paper's approximation k/(2p-1) is the limit for small error
    assert expected_votes(0.999, 3) == pytest.approx(3 / 0.998, rel=1e-6)
    with pytest.raises(ValueError):
        p_step(0.5, 3)
    with pytest.raises(ValueError):
        k_min(0.9, S, 1.0)


def test_expected_votes_matches_simulated_voting():
    rng = np.random.default_rng(7)
    p, k, trials = 0.7, 3, 4000
    used = []
    for _ in range(trials):
        v = AheadByK(k)
        while not v.add("right" if rng.random() < p else "wrong"):
            pass
        used.append(v.votes)
    mean, se = np.mean(used), np.std(used) / math.sqrt(trials)
    assert abs(mean - expected_votes(p, k)) < 4 * se


def test_plan_cost():
    r = plan(0.9978, S, 0.95, valid=0.97, tokens_in=1000, tokens_out=538, price_in=0.4,
             price_out=1.6)
    assert r.k == 3
    assert r.samples_per_step == pytest.approx(expected_votes(0.9978, 3) / 0.97)
    assert r.cost == pytest.approx(r.samples_total * (1000 * 0.4 + 538 * 1.6) / 1e6)


def test_k_by_class_is_set_by_the_weakest_class_not_the_pooled_mean():
    from maker_local.voting.scaling import class_k_min, k_min
    # a million easy steps and 16 hard ones: pooled, p is ~0.99999 and k=1..2 would do
    easy = (1_000_000, [0.99999] * 50)
    hard = (16, [0.80] * 16)
    got = class_k_min({"easy": easy, "hard": hard}, 0.95)
    pooled = (1_000_000 * 0.99999 + 16 * 0.80) / 1_000_016
    assert got.k > k_min(pooled, 1_000_016, 0.95)
    assert got.setter == "hard" and got.p_run >= 0.95
    # the same as the formula when there is one class with one p
    one = class_k_min({"all": (1_048_575, [0.9978])}, 0.95)
    assert one.k == k_min(0.9978, 1_048_575, 0.95) == 3


def test_k_by_class_refuses_a_class_voting_cannot_fix():
    from maker_local.voting.scaling import class_k_min
    got = class_k_min({"ok": (100, [0.999]), "bad": (4, [0.9, 0.45])}, 0.95)
    assert got.k is None and got.hopeless == ["bad"]
