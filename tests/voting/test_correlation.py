"""Correlated errors: the beta model of per-step accuracy, its estimators, and the sim that
draws from it (seeded; checked against closed forms and against plain Monte Carlo)."""
import json
import math

import numpy as np
import pytest

from maker_local.voting.krule import choose_k
from maker_local.voting.correlation import counts, measure, rho_estimate
from maker_local.voting.steperrors import StepErrors, p_wrong, votes_needed
from maker_local.backends.sim import SimBackend, SimModel
from maker_local.voting.scaling import expected_votes, p_step
from maker_local.voting.schedule import Schedule, VoteConfig
from maker_local.voting.seeds import Temperatures
from maker_local.tasks.hanoi import Hanoi

N20 = 2**20 - 1


def beta_binomial(rng, steps, votes, e, rho):
    """Per-step wrong votes when each step's error rate is a beta with mean e, ICC rho."""
    if rho == 0:
        q = np.full(steps, e)
    else:
        s = 1 / rho - 1
        q = rng.beta(e * s, (1 - e) * s, steps)
    return rng.binomial(votes, q), q


# ---------------------------------------------------------------- the distribution
@pytest.mark.parametrize("p,k", [(0.9978, 3), (0.8, 5), (0.6, 7), (0.5, 3), (0.3, 3)])
def test_gambler_ruin_forms_agree_with_the_scaling_laws(p, k):
    if p > 0.5:
        assert p_wrong(p, k) == pytest.approx(1 - p_step(p, k), rel=1e-12)
        assert votes_needed(p, k) == pytest.approx(expected_votes(p, k), rel=1e-12)
    # symmetric in right and wrong: the walk only knows which side is more likely
    assert p_wrong(p, k) + p_wrong(1 - p, k) == pytest.approx(1.0)
    assert votes_needed(p, k) == pytest.approx(votes_needed(1 - p, k))
    if p == 0.5:
        assert votes_needed(p, k) == k * k


@pytest.mark.parametrize("e,rho", [(0.0022, 1e-5), (0.0022, 0.008), (2.3e-4, 0.01),
                                   (0.05, 0.3), (0.2, 0.9)])
def test_quadrature_holds_the_beta_mean_and_icc(e, rho):
    q, w, below = StepErrors(e, rho).nodes()
    assert w.sum() + below == pytest.approx(1.0, abs=1e-9)
    m1, m2 = (q * w).sum(), (q * q * w).sum()
    assert m1 == pytest.approx(e, rel=1e-6)
    assert (m2 - m1 * m1) / (m1 * (1 - m1)) == pytest.approx(rho, rel=1e-6)


@pytest.mark.parametrize("rho", [1e-10, 1e-13, 1e-16, 3e-19])
def test_a_correlation_near_zero_stays_finite_and_tends_to_independence(rho):
    """The beta of a tiny rho has huge a and b: the quadrature used to overflow exp there
    (NaN in bench's and calibrate's figures, issue 28); now it is finite, holds the mean,
    and its answers approach the independent ones."""
    e = 0.0043  # with rho 3e-19: a = 1.5e16, b = 3.5e18, as bench met them
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        q, w, below = StepErrors(e, rho).nodes()
        assert np.isfinite(w).all() and np.isfinite(q).all()
        assert w.sum() + below == pytest.approx(1.0, abs=1e-9)
        assert (q * w).sum() == pytest.approx(e, rel=1e-4)
        assert StepErrors(e, rho).p_full(3, N20) == pytest.approx(
            StepErrors(e).p_full(3, N20), rel=1e-2)


def test_no_correlation_is_the_papers_formula():
    d = StepErrors(0.0022)
    assert d.p_full(3, N20) == pytest.approx(p_step(0.9978, 3) ** N20, rel=1e-9)
    assert d.votes(3) == pytest.approx(expected_votes(0.9978, 3))
    assert choose_k(d, N20, 0.95).k == 3
    # Figure 8 under independence: after 3 votes, every step whose three votes disagree
    und = d.undecided(3, 5, N20)
    assert und[:2] == [N20, N20]
    assert und[2] == pytest.approx(N20 * (1 - 0.9978**3 - 0.0022**3), rel=1e-9)
    # ahead-by-3 cannot decide at an even vote count
    assert und[3] == pytest.approx(und[2], rel=1e-12)
    # per round: the first round asks 3 votes of every step, so round 1 = vote 3
    assert d.undecided(3, 1, N20, per="round")[0] == pytest.approx(und[2])


def test_correlation_moves_errors_onto_fewer_steps():
    """Same mean error: correlated steps leave fewer steps undecided after 3 votes but more
    after 5, and cost more wrong decisions."""
    ind, cor = StepErrors(0.0022), StepErrors(0.0022, 0.05)
    u_ind, u_cor = ind.undecided(3, 5, N20), cor.undecided(3, 5, N20)
    assert u_cor[2] < u_ind[2] and u_cor[4] > 5 * u_ind[4]
    assert cor.expected_wrong(3, N20) > 100 * ind.expected_wrong(3, N20)
    assert cor.share_hopeless() > 0 == ind.share_hopeless()


def test_hopeless_steps_put_a_floor_under_wrong_decisions():
    d = StepErrors(0.001, 0.0, hopeless=1e-4, hopeless_p=0.2)
    floor = N20 * 1e-4 * p_wrong(0.2, 1)  # 0.8: more votes only make it surer
    assert all(d.expected_wrong(k, N20) >= floor for k in (3, 10, 60))
    assert choose_k(d, N20, 0.95).k is None
    assert d.share_hopeless() == pytest.approx(1e-4)


@pytest.mark.parametrize("per", ["vote", "round"])
def test_undecided_curve_matches_monte_carlo(per):
    """The exact walk against plain simulation of ahead-by-3 voting, step by step."""
    e, rho, k, steps, valid = 0.03, 0.2, 3, 40_000, 0.9
    rng = np.random.default_rng(7)
    _, q = beta_binomial(rng, steps, 1, e, rho)
    margin = np.zeros(steps, np.int64)
    live = np.ones(steps, bool)
    got = []
    for _ in range(6):
        ask = np.where(live, k - np.abs(margin), 0) if per == "round" else live.astype(int)
        for j in range(ask.max()):
            go = live & (ask > j)
            u = rng.random(steps)
            ok = u < (valid if per == "round" else 1.0)  # red flags only cost rounds
            wrong = rng.random(steps) < q
            margin += np.where(go & ok, np.where(wrong, -1, 1), 0)
        live &= np.abs(margin) < k
        got.append(int(live.sum()))
    want = StepErrors(e, rho).undecided(k, 6, steps, per=per, valid=valid)
    for g, w in zip(got, want):
        assert abs(g - w) < 4 * math.sqrt(w) + 3, (got, want)


# ---------------------------------------------------------------- the estimators
def test_rho_estimate_recovers_a_known_correlation():
    rng = np.random.default_rng(1)
    wrong, _ = beta_binomial(rng, 4000, 8, 0.05, 0.15)
    r = rho_estimate(8 - wrong, np.full(4000, 8))
    assert r["low"] < 0.15 < r["high"]
    assert r["rho"] == pytest.approx(0.15, abs=0.04)
    assert r["error"] == pytest.approx(0.05, abs=0.005)


def test_rho_estimate_of_independent_errors_includes_zero_and_can_tell_them_apart():
    rng = np.random.default_rng(2)
    wrong, _ = beta_binomial(rng, 4000, 6, 0.05, 0.0)
    r = rho_estimate(6 - wrong, np.full(4000, 6))
    assert r["low"] < 0 < r["high"] and abs(r["rho"]) < 0.03
    wrong, _ = beta_binomial(rng, 4000, 6, 0.05, 0.1)
    r = rho_estimate(6 - wrong, np.full(4000, 6))
    assert r["low"] > 0.03


def test_rho_needs_errors_and_two_votes():
    assert rho_estimate(np.array([3, 3]), np.array([3, 3]))["rho"] is None
    assert rho_estimate(np.array([0, 1]), np.array([1, 1]))["steps"] == 0


def test_counts_reads_vote_sequences():
    c = counts([[True, True, True], [False, False, True, True, True, True, True],
                [False], []], first=3)
    assert c["right"].tolist() == [3, 1, 0, 0]
    assert c["votes"].tolist() == [3, 3, 1, 0]
    assert c["collided"].tolist() == [0, 1, -1, -1]


def test_measure_flags_collisions_and_hopeless_steps():
    rng = np.random.default_rng(3)
    steps, n = 3000, 6
    wrong, q = beta_binomial(rng, steps, n, 0.02, 0.0)
    wrong[:30] = rng.binomial(n, 0.8, 30)  # 1% of steps mostly wrong
    first_two = (rng.random((steps, 2)) < np.maximum(q, 0)[:, None]).all(axis=1)
    first_two[:30] = rng.random(30) < 0.64
    c = measure(n - wrong, np.full(steps, n), first_two.astype(int), steps=N20, k=3)
    h = c["hopeless"]
    assert 25 <= h["count"] <= 34 and h["at_most"] >= h["share"]
    # 1% of steps at q = 0.8: collisions 0.0068 against (0.0278)^2 = 0.00077 if independent
    assert c["collisions"]["ratio"] > 5
    ew = c["expected_wrong"]
    # the hopeless steps alone are wrong about 0.8^3/(0.8^3+0.2^3) = 98% of the time
    assert ew["fitted"] == pytest.approx(N20 * h["share"] * 0.98, rel=0.1)
    assert ew["independent"] < 0.01 * ew["fitted"] and ew["high"] >= ew["fitted"]
    assert ew["k_min_fitted"] is None and "fix those steps" in c["verdict"]


def test_measure_without_errors_says_how_much_could_hide():
    c = measure(np.full(100, 6), np.full(100, 6), np.zeros(100, int), steps=N20, k=3)
    assert c["rho"] is None and c["hopeless"]["count"] == 0
    # 0 of 100 steps: up to 3.7% by Wilson, so up to 7.4% could be hopeless
    assert c["hopeless"]["at_most"] == pytest.approx(0.074, abs=0.002)
    assert c["expected_wrong"]["high"] > 0.03 * N20 and "cannot be measured" in c["verdict"]


@pytest.mark.parametrize("n", [1, 2, 3, 6, 9])
def test_a_hopeless_step_shows_itself_at_least_half_the_time(n):
    """The premise of `at_most`: P(Bin(n, p) <= n/2) >= 1/2 for p <= 1/2."""
    for p in (0.5, 0.4, 0.1):
        seen = sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(n + 1)
                   if j <= n / 2)
        assert seen >= 0.5 - 1e-12


# ---------------------------------------------------------------- the sim
def test_sim_draws_per_step_errors_from_the_beta():
    sim = SimBackend(Hanoi(20), SimModel(error=0.0022, correlation=0.05))
    q = sim.step_errors(np.arange(N20))
    assert q.mean() == pytest.approx(0.0022, rel=0.03)
    assert q.var() / (q.mean() * (1 - q.mean())) == pytest.approx(0.05, rel=0.1)
    again = SimBackend(Hanoi(20), SimModel(error=0.0022, correlation=0.05))
    assert np.array_equal(again.step_errors(np.arange(0, N20, 97)), q[::97])
    # off by default: today's difficulty spread, and the run identity of older runs
    assert "correlation" not in SimBackend(Hanoi(3), SimModel()).describe()
    assert SimBackend(Hanoi(3), SimModel(correlation=0.1)).describe()["correlation"] == 0.1
    with pytest.raises(ValueError, match="--sim-correlation"):
        SimModel(correlation=1.0)


def test_sim_votes_follow_the_model_curve():
    """A whole sim run with correlated errors: steps still undecided after each vote count
    match StepErrors.undecided (Poisson noise), and differ from independent errors."""
    task = Hanoi(14)
    e, rho = 0.01, 0.05
    model = SimModel(error=e, valid=1.0, wrong=1, correlation=rho, tokens_mean=50,
                     tokens_sigma=0.1, length_slope=0.0, seed=5)
    sched = Schedule(task, VoteConfig(k=3, window=4096, temperatures=Temperatures(0.7, 0.7)))
    sim = SimBackend(task, model)
    votes = []
    while not sched.finished:
        reqs = sched.next_batch()
        votes += [d.votes for d in sched.accept(reqs, sim.sample(reqs)).decided]
    votes = np.array(votes)
    want = StepErrors(e, rho).undecided(3, 7, votes.size)
    got = [int((votes > r).sum()) for r in range(1, 8)]
    for g, w in zip(got[2:], want[2:]):
        assert abs(g - w) < 4 * math.sqrt(w) + 3, (got, want)
    ind = StepErrors(e).undecided(3, 7, votes.size)
    assert got[4] > ind[4] + 6 * math.sqrt(ind[4])


def test_cli_takes_sim_correlation(cli, tmp_path):
    code, out, err = cli("solve", "--backend", "sim", "--disks", "8", "--sim-correlation",
                         "0.2", "--sim-error", "0.05", "--k", "3", "--run-dir",
                         tmp_path / "r", "--quiet", "--json")
    assert code in (0, 1), err
    code, _, err = cli("solve", "--backend", "sim", "--disks", "8", "--sim-correlation",
                       "1.5", "--run-dir", tmp_path / "r2", "--quiet")
    assert code != 0 and "--sim-correlation" in err


# ---------------------------------------------------------------- plan
def test_plan_without_correlation_is_the_formula(cli):
    code, out, _ = cli("plan", "--error", "0.0022", "--correlation", "0", "--json")
    r = json.loads(out)
    c = r["correlated"]
    # (1 - p_step loses digits to cancellation: 1e-6 is what it holds)
    assert c["expected_wrong"] == pytest.approx(N20 * (1 - r["p_step"]), rel=1e-6)
    assert c["p_full"] == pytest.approx(r["p_full"], rel=1e-9)
    assert c["votes_per_step"] == pytest.approx(r["votes_per_step"], rel=1e-12)
    code, out, _ = cli("plan", "--error", "0.0022", "--json")
    assert "correlated" not in json.loads(out)


def test_plan_under_the_figure_8_fit(cli):
    code, out, _ = cli("plan", "--error", "0.0002276", "--correlation", "0.00795", "--valid",
                       "0.97", "--tokens-out", "538", "--price-out", "1.6")
    assert code == 0
    assert "vote 3: 710, vote 4: 710, vote 5: 17," in out
    assert "under correlation: rho 0.00795" in out


def test_plan_with_hopeless_steps_finds_no_k(cli):
    # no k: plan refuses (exit 2) in one line that names the levers
    code, out, err = cli("plan", "--error", "0.0022", "--correlation", "0.01", "--hopeless",
                         "1e-4", "--json")
    assert code == 2 and out == "" and "no k fixes" in err and "--second-opinion" in err
    # at a k the user gives, the figures, and one line of what that k costs
    code, out, err = cli("plan", "--error", "0.0022", "--correlation", "0.01", "--hopeless",
                         "1e-4", "--k", "3", "--json")
    c = json.loads(out)["correlated"]
    assert c["k_min"] is None and c["expected_wrong"] > N20 * 1e-4 * 0.5
    assert "--k 3: " in err and "no k reaches it" in err
    code, out, _ = cli("plan", "--error", "0.0022", "--correlation", "0.01", "--hopeless",
                       "1e-4", "--k", "3")
    assert "none: no k reaches the target" in out
    code, _, err = cli("plan", "--error", "0.0022", "--hopeless", "1e-4")
    assert code != 0 and "--correlation" in err


def test_plan_reads_the_correlation_of_a_calibration(cli, tmp_path):
    out = tmp_path / "cal.json"
    code, _, err = cli("calibrate", "--backend", "sim", "--disks", "10-12",
                       "--steps-per-size", "60", "--samples", "8", "--sim-error", "0.05",
                       "--sim-correlation", "0.3", "--sim-wrong", "1", "--out", out)
    assert code == 0, err
    fit = json.loads(out.read_text())["correlation"]["fit"]
    code, text, _ = cli("plan", "--calibration", out, "--json", "--k", "3")
    c = json.loads(text)["correlated"]
    assert (c["rho"], c["hopeless"]) == (fit["rho"], fit["hopeless"])
    assert "its per-step distribution" in c["source"]
    # a flag wins over the file
    code, text, _ = cli("plan", "--calibration", out, "--correlation", "0", "--json",
                        "--k", "3")
    assert json.loads(text)["correlated"]["rho"] == 0


# ---------------------------------------------------------------- report
def test_run_moments_invert_the_beta():
    from maker_local.voting.correlation import beta_from_run_moments
    for e, rho in [(0.01, 0.0), (0.01, 0.05), (0.0022, 0.008), (0.2, 0.3)]:
        d = StepErrors(e, rho)
        a, c = float(d.expect(lambda q: (1 - q) ** 3)), float(d.expect(lambda q: q * q))
        got = beta_from_run_moments(a, c, 3)
        assert got == pytest.approx((e, rho), abs=1e-9)
    # fewer collisions than independence: a negative rho by the moment formula
    e, rho = beta_from_run_moments(0.97**3, 0.5 * 0.03**2, 3)
    assert e == pytest.approx(0.03) and rho < 0


def test_report_without_a_reference_measures_nothing():
    from maker_local.voting.correlation import from_decisions
    contested = [{"answers": [{"correct": None}, {"correct": None}]}]
    c = from_decisions(np.array([3, 3, 5]), np.zeros(3, int), 0, 3, 100, contested)
    assert not c["referenced"] and c["rho"] is None and c["hopeless"]["at_most"] == 1.0


def test_from_run_reads_votes_in_order_and_without_a_reference():
    from maker_local.voting.correlation import from_run
    from maker_local.store.reads import StepVotes
    steps = [StepVotes(0, [0, 0, 0], {0: 1}, 0),            # right, unanimous
             StepVotes(1, [1, 1, 0, 0, 0, 0, 0], {0: 1, 1: 0}, 0),  # collision, then right
             StepVotes(2, [1, 1, 1], {1: 0}, 1)]            # decided wrong: hopeless
    c = from_run(steps, 3, 1000)
    assert c["referenced"] and c["collisions"]["count"] == 2
    assert c["hopeless"]["count"] == 1 and c["votes"] == 9  # first 3 votes of each step
    assert c["error"] == pytest.approx((0 + 2 / 3 + 1) / 3)
    # no reference: right = agrees with the decided answer, so step 2 looks right
    blind = [StepVotes(s.step, s.votes, dict.fromkeys(s.correct), s.winner) for s in steps]
    c = from_run(blind, 3, 1000)
    assert not c["referenced"] and c["hopeless"]["count"] == 0
    assert "decided answer" in c["basis"]


def test_report_measures_correlation_from_the_ledger(cli, tmp_path):
    """Independent errors: the report's estimate holds 0 and the error; correlated errors:
    it finds rho."""
    from maker_local.voting.correlation import from_run
    from maker_local.store import Ledger, reads
    for rho, run in (("0", "ind"), ("0.05", "cor")):
        code, _, err = cli("solve", "--backend", "sim", "--disks", "15", "--sim-error", "0.01",
                           "--sim-spread", "0", "--sim-correlation", rho, "--sim-wrong", "1",
                           "--k", "3", "--run-dir", tmp_path / run, "--quiet")
        assert code in (0, 1), err
    code, out, _ = cli("report", tmp_path / "ind", "--json")
    c = json.loads(out)["correlation"]
    assert c["rho_low"] < 0 < c["rho_high"] and c["run_steps"] == 2**15 - 1
    assert c["error"] == pytest.approx(0.01, rel=0.1)
    # all the votes instead: ahead-by-k gave the steps that erred early more right votes,
    # so the error per step reads ~40% low
    led = Ledger.read(tmp_path / "ind")
    seqs = [[s.correct[a] == 1 for a in s.votes] for s in reads.final_votes(led)]
    led.close()
    naive = counts(seqs)
    assert rho_estimate(naive["right"], naive["votes"])["error"] < 0.008
    code, out, _ = cli("report", tmp_path / "cor", "--json")
    c = json.loads(out)["correlation"]
    assert c["rho_low"] < 0.05 < c["rho_high"] and c["rho_low"] > 0.01
    assert c["collisions"]["ratio"] > 2 and c["referenced"]
    # the decisions-only estimate agrees with the pairwise one over each step's first votes
    led = Ledger.read(tmp_path / "cor")
    full = from_run(reads.final_votes(led), 3, 2**15 - 1)
    led.close()
    assert full["rho"] == pytest.approx(c["rho"], abs=0.02)
    assert full["error"] == pytest.approx(c["error"], rel=0.1)
    assert full["hopeless"]["count"] == c["hopeless"]["count"]
    code, out, _ = cli("report", tmp_path / "cor")
    assert "correlation rho" in out and "run errors" in out


# ---------------------------------------------------------------- bench
def test_bench_slice_reads_the_correlation_of_its_votes(cli):
    """The bench's votes in memory give the same block as the ledger of the same run, and
    the table and JSON carry it."""
    from maker_local.analysis.bench import summarize
    from maker_local.driver.slice import run_slice
    from maker_local.voting.correlation import from_run
    task = Hanoi(15)
    model = SimModel(error=0.01, valid=0.95, wrong=1, correlation=0.05, seed=2)
    st = run_slice(task, SimBackend(task, model), VoteConfig(k=3, window=4096), 0, 2**15 - 1)
    c = summarize(st, 1, 0.0, 2**15 - 1)["correlation"]
    assert c["steps"] == 2**15 - 1 and c["rho_low"] < 0.05 < c["rho_high"]
    assert c["rho_low"] > 0.01 and c["hopeless"]["count"] == st.errors
    votes = st.step_votes()
    assert sum(len(v.votes) for v in votes) == st.votes
    assert from_run(votes, 3, 2**15 - 1)["rho"] == c["rho"]
    code, out, _ = cli("bench", "--backend", "sim", "--disks", "12", "--steps", "300",
                       "--warmup", "10", "--k", "3", "--sim-error", "0.05")
    table, line = out.rsplit("\n", 2)[0], out.splitlines()[-1]
    assert "within-step correlation" in table and "wrong decisions, full run" in table
    assert json.loads(line)["correlation"]["k"] == 3
