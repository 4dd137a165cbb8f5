"""engine.krule: THE rule for k, one for calibrate, solve --k auto, bench and plan; checked
against the closed forms it must reduce to, and through all four commands on the same
calibrations (independent errors, errors concentrated on some steps, hopeless steps)."""
import json
import math

import numpy as np
import pytest

from maker_local.voting import krule
from maker_local.voting.scaling import k_min, p_step
from maker_local.voting.steperrors import StepErrors, wrong_at

N20 = 2**20 - 1


# ------------------------------------------------------------------ the rule, pure
@pytest.mark.parametrize("error", [0.0022, 0.0358, 0.2342, 0.3571, 1e-6])
def test_independent_errors_give_the_papers_k_min(error):
    got = krule.choose_k(StepErrors(error), N20, 0.95)
    assert got.k == k_min(1 - error, N20, 0.95) and got.why is None
    assert got.p_full == pytest.approx(p_step(1 - error, got.k) ** N20, rel=1e-6)
    assert got.p_full >= 0.95 > krule.predict(StepErrors(error), got.k - 1, N20)[1] \
        if got.k > 1 else True


def test_concentrated_errors_need_a_larger_k_than_their_mean_says():
    ind, cor = StepErrors(0.0022), StepErrors(0.0022, 0.01)
    a, b = krule.choose_k(ind, N20, 0.95), krule.choose_k(cor, N20, 0.95)
    assert b.k > a.k
    # and b.k is the smallest: one vote less misses the target under the beta
    assert krule.predict(cor, b.k - 1, N20)[1] < 0.95 <= b.p_full


def test_hopeless_steps_are_refused_with_the_levers():
    d = StepErrors(0.002, 0.0, hopeless=1e-4, hopeless_p=0.3)
    got = krule.choose_k(d, N20, 0.95)
    assert got.k is None and got.why == "hopeless"
    assert got.floor == pytest.approx(N20 * 1e-4)  # q = 0.7 > 1/2: wrong as k grows
    line = got.line()
    assert "\n" not in line and "no k fixes" in line
    for lever in ("--samples", "--second-opinion", "--escalate", "--temperature", "retrain"):
        assert lever in line
    # a short run can afford them: then the rule gives a k
    assert krule.choose_k(d, 100, 0.95).k is not None
    # too hard but not hopeless: k_max, not hopeless
    far = krule.choose_k(StepErrors(0.45), N20, 0.95)
    assert far.k is None and far.why == "k_max" and "no k up to 64" in far.line()


def test_another_voting_rule_has_no_law():
    with pytest.raises(ValueError, match="give --k N"):
        krule.choose_k(StepErrors(0.01), 100, 0.95, rule="first-to-k")


def test_a_card_class_table_is_point_masses():
    pts = krule.classes_distribution({"easy": (1000, [1.0, 1.0]), "hard": (10, [0.9, 0.8])})
    want = (5 * wrong_at(0.1, 3) + 5 * wrong_at(0.2, 3)) / 1010
    assert pts.wrong_rate(3) == pytest.approx(float(want), rel=1e-12)
    got = krule.choose_k(pts, 1010, 0.95)
    assert got.k is not None and got.p_full >= 0.95
    assert krule.choose_k(krule.classes_distribution({"x": (10, [0.5, 1.0])}), 10,
                          0.95).why == "hopeless"


def test_the_planning_distribution_of_a_file():
    # no correlation block: independent errors at the interval's low end (as always)
    d = krule.planning_distribution({"p": 0.99, "p_low": 0.98})
    assert (d.error, d.rho, d.hopeless) == pytest.approx((0.02, 0.0, 0.0))
    fit = {"error": 0.01, "rho": 0.05, "hopeless": 0.001, "hopeless_p": 0.3, "rho_low": 0.02}
    d = krule.planning_distribution({"p": 0.99, "p_low": 0.985, "correlation": {"fit": fit}})
    assert (d.error, d.rho, d.hopeless, d.hopeless_p) == pytest.approx((0.015, 0.05, 0.001,
                                                                         0.3))
    # a rho whose interval holds 0 is not planned with
    fit["rho_low"] = -0.01
    d = krule.planning_distribution({"p": 0.99, "p_low": 0.985, "correlation": {"fit": fit}})
    assert d.rho == 0.0


# ------------------------------------------------------------------ no NaN, no inf
@pytest.mark.parametrize("e", [0.05, 0.002, 1e-6, 1e-12, 0.0])
@pytest.mark.parametrize("rho", [0.0, 1e-30, 1e-12, 1e-6, 0.01, 0.3, 0.9, 0.999, 1 - 1e-9])
def test_every_figure_is_finite_and_meets_its_closed_forms_at_the_extremes(e, rho):
    """rho -> 0: the independent gambler's ruin; rho -> 1: each step always right (share
    1 - e) or always wrong (share e); e -> 0: q^k. Numpy warnings are errors here."""
    with np.errstate(all="raise", under="ignore"):
        d = StepErrors(e, rho)
        q, w, below = d.nodes()
        assert np.isfinite(q).all() and np.isfinite(w).all() and math.isfinite(below)
        for k in (1, 3, 10):
            f, v = d.wrong_rate(k), d.votes(k)
            assert math.isfinite(f) and math.isfinite(v) and 0 <= f <= 1
            assert math.isfinite(d.p_full(k, N20))
            if rho <= 1e-12 and e > 0 and rho * (1 - e) < 1e-9 * e:  # the independent limit
                assert f == pytest.approx(float(wrong_at(e, k)), rel=1e-4)
            if rho >= 0.999 and e > 0:  # the all-or-nothing limit
                assert f == pytest.approx(e, rel=0.02)
                assert d.share_hopeless() == pytest.approx(e, rel=0.02)
            if e == 0:
                assert f == 0 and v == k
        got = krule.choose_k(d, N20, 0.95)
        assert got.k is not None or got.why in ("hopeless", "k_max")
        assert math.isfinite(got.expected_wrong) and math.isfinite(got.floor)
        assert "nan" not in got.line() and "inf" not in got.line()


def test_wrong_at_keeps_the_digits_of_a_tiny_error():
    assert float(wrong_at(1e-12, 3)) == pytest.approx(1e-36, rel=1e-9)


# ------------------------------------------------------------------ four commands, one k
CALS = {  # name: calibrate flags (the sim), and what the rule must say
    "independent": (["--sim-error", "0.01", "--sim-spread", "0"], "k"),
    "concentrated": (["--sim-error", "0.01", "--sim-correlation", "0.03"], "k"),
    "hopeless": (["--sim-error", "0.02", "--sim-correlation", "0.3"], "refused"),
}


@pytest.fixture(scope="module")
def calibrations(tmp_path_factory):
    from conftest import run_cli
    folder = tmp_path_factory.mktemp("cals")
    out = {}
    for name, (flags, _) in CALS.items():
        path = folder / f"{name}.json"
        code, _, err = run_cli("calibrate", "--backend", "sim", "--disks", "12",
                               "--steps-per-size", "1500", "--samples", "10", "--seed", "5",
                               "--sim-wrong", "1",
                               "--out", path, *flags)
        assert code == 0, err
        out[name] = path
    return out


@pytest.mark.parametrize("name", list(CALS))
def test_calibrate_solve_bench_and_plan_give_one_k_or_one_refusal(cli, calibrations, name,
                                                                   tmp_path):
    cal = calibrations[name]
    data = json.loads(cal.read_text())
    want = CALS[name][1]
    k = data["k"]
    assert (k is None) == (want == "refused"), data["k_rule"]
    if name == "concentrated":  # the data say errors concentrate: not the formula's k
        assert data["correlation"]["fit"]["rho_low"] > 0
        assert k > data["k_min_conservative"]
    if name == "independent":
        assert k == data["k_min_conservative"]
    code, out, err = cli("plan", "--calibration", cal, "--json")
    code_s, out_s, err_s = cli("solve", "--backend", "sim", "--disks", "20", "--steps", "0:20",
                               "--k", "auto", "--calibration", cal, "--run-dir",
                               tmp_path / "r", "--quiet", "--json")
    code_b, out_b, err_b = cli("bench", "--backend", "sim", "--disks", "20", "--steps", "20",
                               "--warmup", "0", "--calibration", cal,
                               "--tokens-per-second", "1000")
    if k is None:
        line = data["k_rule"]["line"].split(" (")[0]  # the same refusal, its source aside
        for c, e in ((code, err), (code_s, err_s), (code_b, err_b)):
            assert c == 2 and line in e and "--second-opinion" in e
            assert len([x for x in e.splitlines() if "no k reaches" in x]) == 1
        # an explicit k still runs, with one line of what the calibration predicts
        code_s, out_s, err_s = cli("solve", "--backend", "sim", "--disks", "20", "--steps",
                                   "0:20", "--k", "3", "--calibration", cal, "--run-dir",
                                   tmp_path / "r3", "--quiet", "--json")
        assert code_s == 0 and "--k 3: " in err_s and "no k reaches it" in err_s
        return
    assert code == 0 and json.loads(out)["k"] == k
    assert code_s in (0, 1) and json.loads(out_s)["k"] == k
    r = json.loads(out_b.strip().splitlines()[-1])
    assert code_b == 0 and r["k"] == r["plugged"]["k"] == k


def test_a_refused_k_auto_starts_no_engine(cli, calibrations, tmp_path):
    """k is decided before a backend is built: a refusal against a server that is not there
    comes at once (no wait for it) and leaves no run directory."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens there
    for cmd in (["solve", "--run-dir", tmp_path / "r"], ["bench", "--steps", "20"]):
        code, _, err = cli(*cmd, "--backend", "vllm-http", "--base-url", url,
                           "--disks", "20", "--k", "auto", "--calibration",
                           calibrations["hopeless"])
        assert code == 2 and "no k reaches" in err, err
        assert "waiting for a vLLM server" not in err
    assert not (tmp_path / "r").exists()
