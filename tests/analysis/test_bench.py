"""`maker-local bench` on the sim: table then JSON line, the cost arithmetic recomputed by
hand, the projection from a plugged-in accuracy recomputed by hand, and usage errors."""
import json
import math

import pytest

from maker_local.analysis.bench import cache_hit_rate
from maker_local.driver.slice import SliceStats, run_slice
from maker_local.voting.schedule import VoteConfig
from maker_local.tasks.hanoi import Hanoi

# small and quick: a 12-disk run (4,095 steps), a slice of 300 steps after 50 of warm-up
SMALL = ("bench", "--backend", "sim", "--disks", "12", "--steps", "300", "--warmup", "50")
KEYS = {"model", "backend", "profile", "k", "rule", "task", "task_label", "start", "warmup", "steps", "decided",
        "rounds", "samples", "valid", "errors", "stopped", "wall_s", "samples_per_s",
        "votes_per_step", "samples_per_step", "red_flag_rate", "flags", "tokens_out_per_s",
        "tokens_in_per_s", "tokens_out_mean", "tokens_in_mean", "prefix_cache_hit_rate",
        "machines", "machine_unit", "machine_s_per_step", "price_per_hour", "usd_per_step",
        "run_steps", "projected_wall_s", "projected_usd", "plugged", "paper",
        "tokens_reasoning_mean", "tokens_answer_mean", "usd_per_step_split", "correlation"}


def bench(cli, *extra):
    code, out, err = cli(*SMALL, *extra)
    assert code == 0, err
    lines = out.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def test_table_then_one_json_line(cli, tmp_path):
    r, table = bench(cli, "--out", tmp_path / "b.json")
    assert table[0].split() == ["metric", "value"]
    for label in ("samples/s", "valid votes / decided step", "red-flag rate", "output tokens/s",
                  "input tokens/s", "prefix-cache hit rate", "machine-s / reliable step",
                  "USD / reliable step", "full run (4,095 steps)", "errors in slice",
                  "paper's API projections"):
        assert any(line.startswith(label) for line in table), label
    assert set(r) == KEYS
    assert r["decided"] == 300 and r["errors"] == 0 and r["stopped"] is None
    assert r["start"] == (4095 - 350) // 2  # centred on the middle of the run
    assert r["prefix_cache_hit_rate"] is None and r["machine_unit"] == "machine (CPU)"
    assert r["samples"] >= r["valid"] >= r["votes_per_step"] * r["decided"]
    assert r["red_flag_rate"] == pytest.approx(1 - r["valid"] / r["samples"])
    assert {p["model"]: p["usd"] for p in r["paper"]} == {
        "gpt-4.1-mini": 3500, "gpt-oss-20b": 1700, "o3-mini": 9400}
    saved = json.loads((tmp_path / "b.json").read_text())
    meta = saved.pop("metadata")
    assert set(saved) == KEYS
    assert {"model", "backend", "engine", "engine_version", "device", "date", "git_commit",
            "params"} <= set(meta)
    assert meta["engine"] == "sim" and meta["params"]["steps"] == 300


def test_cost_per_step_and_full_run(cli):
    r, _ = bench(cli, "--price-per-hour", "2.5", "--run-steps", "1048575")
    # the sim has no thought: the whole machine cost is the answer's
    assert r["tokens_reasoning_mean"] == 0
    assert r["usd_per_step_split"]["thought"] == 0
    assert r["usd_per_step_split"]["answer"] == pytest.approx(r["usd_per_step"])
    per_step = r["wall_s"] * 1 / r["decided"]  # wall x 1 machine / reliable steps
    assert r["machine_s_per_step"] == pytest.approx(per_step)
    assert r["usd_per_step"] == pytest.approx(per_step * 2.5 / 3600)
    assert r["projected_usd"] == pytest.approx(r["machine_s_per_step"] * 1048575 * 2.5 / 3600)
    assert r["projected_wall_s"] == pytest.approx(r["wall_s"] / r["decided"] * 1048575)
    r, _ = bench(cli, "--price-per-hour", "2.5", "--gpus", "4")
    assert r["machines"] == 4
    assert r["machine_s_per_step"] == pytest.approx(r["wall_s"] * 4 / r["decided"])


def test_plugged_projection_by_hand(cli):
    r, table = bench(cli, "--p", "0.98", "--tokens-out", "500", "--tokens-in", "1200",
                     "--valid", "0.95", "--tokens-per-second", "1000", "--price-per-hour", "3",
                     "--run-steps", "1048575")
    pl = r["plugged"]
    p, s, t = 0.98, 1048575, 0.95
    k = math.ceil(math.log((t ** (-1 / s)) - 1) / math.log((1 - p) / p))
    q = (1 - p) / p
    votes = k / (2 * p - 1) * (1 - q**k) / (1 + q**k)
    samples = votes / 0.95
    per_million = samples * 500 / 1000 * 1 * 3 / 3600 * 1e6
    assert pl["k"] == k == 5
    assert pl["samples_per_step"] == pytest.approx(samples)
    assert pl["usd_per_million_steps"] == pytest.approx(per_million)
    assert pl["usd"] == pytest.approx(per_million * s / 1e6)
    assert pl["wall_s"] == pytest.approx(samples * s * 500 / 1000)
    # every input is printed, and the formula with the numbers substituted
    text = "\n".join(table)
    for shown in ("p=0.98", "valid=0.95", "tokens_out=500", "tokens_in=1200", "tokens/s=1000",
                  "machines=1", "USD/h=3", f"* 500 / 1000 * 1 * 3 / 3600 * 1e6 = "
                  f"${per_million:,.2f}"):
        assert shown in text, shown


def test_plugged_from_paper_figures_uses_measured_tokens_per_second(cli):
    r, _ = bench(cli, "--paper-figures", "gpt-oss-20b")
    pl = r["plugged"]
    assert pl["p"] == pytest.approx(1 - 0.0358) and pl["tokens_out"] == 1104
    assert pl["tokens_per_s"] == pytest.approx(r["tokens_out_per_s"])
    assert pl["s_per_sample"] == pytest.approx(1104 / r["tokens_out_per_s"])


@pytest.mark.parametrize("args,says", [
    (("--steps", "0"), "--steps must be at least 1"),
    (("--start", "4000"), "runs past the last step"),
    (("--start", "-1"), "--start must be at least 0"),
    (("--warmup", "-5"), "--warmup must be at least 0"),
    (("--p", "0.4", "--tokens-out", "10"), "p must be in (0.5, 1]"),
    (("--p", "0.99"), "--p needs --tokens-out"),
    (("--tokens-per-second", "100"), "--tokens-per-second feeds"),
    (("--paper-figures", "hanoi-step"), "has no [paper] table"),
])
def test_bad_input_is_a_one_line_usage_error(cli, args, says):
    code, out, err = cli(*SMALL, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("maker-local: error:") and says in err


def test_slice_counts_match_the_round_rows():
    from maker_local.backends.sim import SimBackend, SimModel

    task = Hanoi(10)
    sim = SimBackend(task, SimModel(error=0.05, valid=0.9))
    ticks = iter(range(100))
    st = run_slice(task, sim, VoteConfig(k=2, window=64), 500, 200, clock=lambda: next(ticks))
    assert isinstance(st, SliceStats) and st.decided == 200 and st.stopped is None
    assert st.wall_s == 1  # the clock is read at the start and the end, nothing else
    assert st.samples - st.valid == sum(st.flags.values())
    assert st.votes <= st.valid and st.tokens_out > 0


def test_time_limit_ends_the_slice_after_a_round():
    from maker_local.backends.sim import SimBackend, SimModel

    task = Hanoi(10)
    sim = SimBackend(task, SimModel(error=0.05, valid=0.9))
    ticks = iter(range(100))
    st = run_slice(task, sim, VoteConfig(k=2, window=64), 500, 200, max_seconds=3,
                   clock=lambda: next(ticks))
    assert st.rounds == 3 and st.stopped == "time limit of 3 s" and 0 < st.decided < 200


def test_stuck_step_ends_the_slice_as_data():
    from maker_local.backends.sim import SimBackend, SimModel

    task = Hanoi(8)
    sim = SimBackend(task, SimModel(valid=0.05))  # almost every sample is red-flagged
    st = run_slice(task, sim, VoteConfig(k=3, max_samples=4), 100, 20)
    assert st.stopped and "undecided" in st.stopped and st.decided < 20


def test_cache_hit_rate_from_metrics_deltas():
    before = {"vllm:prefix_cache_hits_total": 10.0, "vllm:prefix_cache_queries_total": 20.0}
    after = {"vllm:prefix_cache_hits_total": 100.0, "vllm:prefix_cache_queries_total": 120.0}
    assert cache_hit_rate(before, after) == pytest.approx(0.9)
    assert cache_hit_rate({}, {}) is None
