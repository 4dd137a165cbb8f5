"""Calibration recovers the sim's parameters and sees correlated errors the mean hides."""
import json

import pytest

from conftest import load_json
from maker_local.backends.sim import SimBackend, SimModel
from maker_local.calibrate import (CalibrationConfig, Observation, Observations, calibrate,
                                   estimate, load_calibration)
from maker_local.core.stats import wilson
from maker_local.tasks.hanoi import Hanoi, parse_disks

KEYS = {"version", "created", "backend", "config", "samples", "p", "p_low", "p_high", "valid",
        "valid_low", "valid_high", "repair", "tokens_out_mean", "tokens_in_mean",
        "tokens_reasoning_mean", "tokens", "cap", "cap_cuts", "error_by_length", "by_size",
        "collisions", "per_step_p", "margin", "bad_steps", "success", "k_min",
        "k_min_conservative", "k_min_heterogeneous", "k", "run_steps", "target", "warnings",
        "plots", "per_step", "correlation"}


def run(model: SimModel, disks="3-20", steps=30, samples=10, seed=0, **kw):
    cfg = CalibrationConfig([Hanoi(d) for d in parse_disks(disks)], steps, samples, seed=seed,
                            **kw)
    return calibrate(cfg, SimBackend(Hanoi(20), model))


def test_parse_disks():
    assert parse_disks("3-5,10") == [3, 4, 5, 10]
    assert parse_disks("4, 10,20") == [4, 10, 20]
    for bad in ("0-3", "3-40", "a", "", "5-3"):
        with pytest.raises(ValueError):
            parse_disks(bad)


def test_wilson_matches_the_textbook_value():
    lo, hi = wilson(5, 10)
    assert (float(lo), float(hi)) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    lo, hi = wilson(0, 0)
    assert (float(lo), float(hi)) == (0.0, 1.0)


def test_calibrating_the_sim_recovers_its_error_and_valid_rate():
    r = run(SimModel(error=0.05, valid=0.9, spread=0.0))
    assert r["p_low"] <= 0.95 <= r["p_high"]
    assert r["valid_low"] <= 0.9 <= r["valid_high"]
    assert r["samples"]["total"] == sum(min(30, 2**d - 1) for d in range(3, 21)) * 10
    assert r["k_min"] == 6 and r["k"] == r["k_min_conservative"] >= r["k_min"]
    su = r["success"]
    # independent errors: no false alarm
    assert not su["heterogeneity_significant"] and not su["too_optimistic"]
    assert "No sign of errors concentrating" in su["verdict"]
    assert r["bad_steps"]["count"] == 0
    assert r["collisions"]["low"] <= r["collisions"]["independent"] <= r["collisions"]["high"]
    assert [b["size"] for b in r["by_size"]] == list(range(3, 21))
    assert r["by_size"][0]["label"] == "3 disks"
    # the sim's long answers are more often wrong (Figure 9a)
    bins = r["error_by_length"]
    assert len(bins) == 10 and bins[-1]["error"] > bins[0]["error"]
    assert r["tokens"]["out_valid"]["p99"] <= r["cap"] < r["tokens"]["out_valid"]["p99"] + 50


@pytest.mark.parametrize("seed", [0, 1])
def test_concentrated_errors_make_the_formula_too_optimistic(seed):
    r = run(SimModel(error=0.05, valid=0.9, spread=1.0, concentration=0.95, seed=seed),
            seed=seed)
    su = r["success"]
    assert su["heterogeneity_significant"] and su["too_optimistic"]
    assert su["p_full_heterogeneous"] < su["p_full_formula"]
    assert su["failure_observed"] > su["failure_null_p95"]
    assert "formula is too optimistic" in su["verdict"]
    assert r["per_step_p"]["min"] < 0.7


def test_calibration_measures_within_step_correlation():
    """The sim with a beta of per-step error (ICC 0.15): calibrate recovers rho, sees
    collisions well above independent errors, and the steps right at most half the time."""
    r = run(SimModel(error=0.05, valid=1.0, wrong=1, length_slope=0.0, correlation=0.15,
                     seed=4), disks="12-20", steps=150, samples=10)
    c = r["correlation"]
    assert c["rho_low"] < 0.15 < c["rho_high"]
    assert c["collisions"]["ratio"] > 2
    assert c["collisions"]["low"] > c["collisions"]["independent"]
    # a beta(mean 0.05, ICC 0.15) puts ~1.6% of steps at p_i <= 0.5
    assert c["hopeless"]["count"] >= 5 and c["hopeless"]["at_most"] > 0.016
    ew = c["expected_wrong"]
    assert ew["fitted"] > 1000 * max(ew["independent"], 1e-9) and ew["k_min_fitted"] is None
    # THE rule refuses: no k fixes those steps (and says what to do)
    assert r["k"] is None and r["k_rule"]["why"] == "hopeless"
    assert "--second-opinion" in r["k_rule"]["line"]
    # independent errors: the interval holds 0, nothing is hopeless
    r = run(SimModel(error=0.05, valid=1.0, wrong=1, spread=0.0, length_slope=0.0, seed=4),
            disks="12-20", steps=150, samples=10)
    c = r["correlation"]
    assert c["rho_low"] < 0 < c["rho_high"] and c["hopeless"]["count"] == 0
    assert c["expected_wrong"]["fitted"] < 1


def test_estimate_on_hand_made_samples():
    """Step (5, 0): the wrong answer W beats the right one R; step (5, 1) is always right."""
    rows = []
    for j, key in enumerate(["W", "W", "R", "W", "X"]):
        rows.append(Observation(5, 0, j, key, key == "R", None, 100, 40 + j, 0, key, key == "R"))
    rows.append(Observation(5, 0, 5, None, False, "parse", 100, 40, 0, None, False))
    for j in range(6):
        rows.append(Observation(5, 1, j, "R", True, None, 100, 30, 0, "R", True))
    cfg = CalibrationConfig([Hanoi(5)], 2, 6, run_steps=31)
    r = estimate(Observations(rows), cfg, {"backend": "hand"})
    assert r["p"] == pytest.approx(7 / 11) and r["valid"] == pytest.approx(11 / 12)
    assert r["per_step"] == [[5, 0, 6, 5, 1, 3], [5, 1, 6, 6, 6, 0]]
    assert r["bad_steps"]["count"] == 1 and r["bad_steps"]["share"] == 0.5
    assert r["collisions"]["count"] == 1 and r["collisions"]["steps"] == 2
    assert r["margin"]["min"] == -2
    assert r["per_step_p"]["min"] == pytest.approx(0.2)
    c = r["correlation"]  # step 0: 1 right of 5 (p_i 0.2), step 1: 6 of 6
    assert c["hopeless"]["count"] == 1 and c["collisions"]["count"] == 1
    assert c["error"] == pytest.approx((0.8 + 0) / 2)


def test_cli_writes_json_and_plots_that_solve_can_load(cli, tmp_path):
    out = tmp_path / "cal" / "calibration.json"
    code, text, err = cli("calibrate", "--backend", "sim", "--disks", "3-12",
                          "--steps-per-size", "20",
                          "--samples", "6", "--sim-error", "0.1", "--sim-valid", "0.95",
                          "--sim-spread", "1", "--sim-concentration", "0.95", "--out", out)
    assert code == 0, err
    assert "too optimistic" in text
    # errors concentrate on steps no k fixes: the recommendation is the rule's refusal
    assert "recommend   no k: no k reaches" in text and "no k fixes" in text
    assert "correlation rho" in text and "wrong decisions expected" in text
    data = load_json(out)
    assert KEYS <= set(data)
    assert data["plots"] == ["calibration_error_vs_length.png", "calibration_p_by_size.png",
                             "calibration_p_i_hist.png"]
    for name in data["plots"]:
        png = (out.parent / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    cal = load_calibration(out)
    assert {"p", "valid", "tokens_out_mean", "tokens_in_mean"} <= set(cal)
    assert 0.5 < cal["p"] < 1 and cal["tokens_in_mean"] > 0


def test_unconstrained_also_uses_the_repairing_parser(cli, tmp_path):
    out = tmp_path / "c.json"
    code, text, err = cli("calibrate", "--backend", "sim", "--disks", "4,8",
                          "--steps-per-size", "10",
                          "--samples", "4", "--unconstrained", "--sim-valid", "0.8",
                          "--out", out, "--json")
    assert code == 0, err
    r = json.loads(text)
    assert r["config"]["constrained"] is False
    assert r["repair"]["valid"] >= r["valid"] and 0 < r["repair"]["p"] <= 1


def test_mistakes_are_usage_errors(cli, tmp_path):
    code, _, err = cli("calibrate", "--backend", "sm", "--out", tmp_path / "c.json")
    assert code == 2 and "did you mean 'sim'" in err
    code, _, err = cli("calibrate", "--backend", "sim", "--disks", "3-99", "--out",
                       tmp_path / "c.json")
    assert code == 2 and "--disks" in err
    code, _, err = cli("calibrate", "--backend", "sim", "--samples", "1", "--out",
                       tmp_path / "c.json")
    assert code == 2 and "--samples" in err


def test_load_calibration_says_what_to_fix(tmp_path):
    with pytest.raises(ValueError, match="run maker-local calibrate"):
        load_calibration(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"p": 0.9}))
    with pytest.raises(ValueError, match="missing"):
        load_calibration(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_calibration(bad)


def test_the_generous_cap_stays_inside_the_models_context():
    """calibrate raises the profile's cap 4x to see the length tail, but not past what the
    model's context leaves after the prompts: hanoi-step holds 160 positions, and a server
    answers 64 x 4 = 256 tokens with HTTP 400 (the in-process engine stops at the context)."""
    from maker_local.cli import make_parser
    from maker_local.commands.calibrate import generous_cap
    from maker_local.commands.settings import answer_room, resolve

    def cap(*flags):
        args = make_parser().parse_args(["calibrate", "--profile", "hanoi-step", "--disks",
                                         "4,20", "--out", "/tmp/unused.json", *flags])
        return generous_cap(args, resolve(args)), args, resolve(args)
    got, args, settings = cap("--backend", "vllm-http")
    room = answer_room(args, settings, grid=True)
    assert 64 <= got == room < 160
    assert cap("--backend", "vllm")[0] == room
    assert cap("--backend", "sim")[0] == 256  # the sim has no context
