"""maker_local.analysis.accuracy: one rule for the p that plans a run (the 95% interval's low
end), read the same way by solve's --k auto, bench's --k auto and projection, and plan."""
import argparse
import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from maker_local.analysis import accuracy
from maker_local.analysis.accuracy import Estimate, ModelAccuracy, choose_k, model_accuracy
from maker_local.backends.options import BackendOptions, SimOptions
from maker_local.commands import bench as bench_command
from maker_local.cli import make_parser
from maker_local.commands.common import decide_k
from maker_local.commands.settings import Settings
from maker_local.core.errors import UsageError
from maker_local.voting.scaling import k_min
from maker_local.tasks.hanoi import Hanoi

P, LOW = 0.975, 0.9428  # a measured p whose interval's low end plans for a larger k


@pytest.fixture
def cal(tmp_path) -> Path:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"p": P, "p_low": LOW, "p_high": 0.99, "valid": 0.9,
                                "tokens_out_mean": 300.0, "tokens_in_mean": 900.0}))
    return path


@pytest.fixture
def carded(tmp_path) -> SimpleNamespace:
    """A local model profile whose card.json measured p=0.98 (95% 0.95..0.99) at T=0.1 on
    10 disks, and an exact teacher-forced p of 0.999 at T=0.5."""
    (tmp_path / "m" / "model").mkdir(parents=True)
    (tmp_path / "m" / "card.json").write_text(json.dumps({
        "temperature": 0.1, "rows": [{"size": 10, "p": 0.98, "ci95": [0.95, 0.99],
                                      "p_exact_by_temperature": {"0.5": 0.999}}]}))
    return SimpleNamespace(is_local_path=True, model=str(tmp_path / "m" / "model"),
                           task="hanoi", name="carded")


def args(**kw) -> argparse.Namespace:
    base = {"calibration": None, "k": "auto", "target": 0.95, "rule": "ahead-by-k"}
    return argparse.Namespace(**{**base, **kw})


def settings(backend: str, options: BackendOptions, profile=None) -> Settings:
    """Settings at temperature 0.1 (the card's)."""
    return Settings(backend, profile, None, 750, 0.1, 0.0, True, options)


def bench_line(*flags: str) -> argparse.Namespace:
    """bench's parsed flags for 10 disks, full run 2^20 - 1 steps."""
    return make_parser().parse_args(["bench", "--disks", "10", "--warmup", "0", "--steps",
                                     "100", "--run-steps", str(2**20 - 1), *flags])


def test_the_conservative_p_is_the_low_end_and_the_source_says_so():
    e = Estimate(P, LOW, "c.json")
    assert e.conservative == LOW
    assert e.source == "c.json: the low end of the 95% interval around the measured p=0.9750"
    assert Estimate(0.99, None, "--p").conservative == 0.99  # given: no interval
    assert Estimate(1.0, 1.0, "c.json").source == "c.json: measured"


def test_k_auto_plans_at_the_low_end_not_the_point(cal):
    steps = 2**20 - 1
    assert k_min(LOW, steps, 0.95) > k_min(P, steps, 0.95)  # else this test proves nothing
    got = choose_k("auto", model_accuracy(calibration=cal, profile=None, task=Hanoi(10),
                                          temperature=0.1, backend="sim"), steps, 0.95)
    assert got.k == k_min(LOW, steps, 0.95)
    assert got.record["k_auto"]["p"] == LOW and "p=0.9428" in got.message


def test_solve_and_bench_pick_the_same_k_from_a_calibration_and_bench_projects_with_it(
        cal, capsys):
    task, steps = Hanoi(10), 2**20 - 1
    sim = BackendOptions(sim=SimOptions(error=0.001))  # the file wins over the sim's p
    k_solve, extra = decide_k(args(calibration=cal), settings("sim", sim), task, steps)
    k_bench = bench_command.plan_bench(bench_line("--backend", "sim", "--sim-error", "0.001",
                                                  "--calibration", str(cal))).k
    acc = bench_command.plugged_accuracy(argparse.Namespace(
        calibration=cal, paper_figures=None, p=None, tokens_out=None, tokens_in=None,
        valid=None, tokens_per_second=None, target=0.95), steps)
    assert extra["k_auto"]["p"] == acc.p == LOW
    assert k_solve == k_bench == k_min(acc.p, steps, 0.95)
    assert "low end of the 95% interval" in acc.source
    capsys.readouterr()


def test_bench_projection_from_a_calibration_uses_the_runs_p(cli, cal):
    code, out, err = cli("bench", "--backend", "sim", "--disks", "10", "--steps", "100",
                         "--warmup", "0", "--calibration", cal, "--tokens-per-second", "1000",
                         "--run-steps", "1048575")
    assert code == 0, err
    r = json.loads(out.strip().splitlines()[-1])
    assert r["plugged"]["p"] == LOW and r["plugged"]["k"] == r["k"] == k_min(LOW, 1048575,
                                                                                0.95)
    assert f"p={LOW:.4f}" in err
    code, out, err = cli("plan", "--calibration", cal, "--json")
    assert code == 0 and json.loads(out)["k"] == r["k"]


def test_solve_and_bench_read_the_card_the_same_way(carded, capsys):
    task, steps = Hanoi(10), 1023
    model = BackendOptions()  # a real model knows nothing of itself: its card says
    k_solve, extra = decide_k(args(k=None), settings("vllm", model, carded), task, steps)
    k_bench = decide_k(args(k=None), settings("vllm", model, carded), task, steps)[0]
    assert extra["k_auto"]["p"] == 0.95  # the card's interval's low end, not its 0.98
    assert k_solve == k_bench == k_min(0.95, steps, 0.95)
    err = capsys.readouterr().err
    assert "m/card.json, 10 disks at T=0.1: the low end of the 95% interval" in err
    # at another temperature the card's exact p (no interval) is the p
    assert accuracy.card_accuracy(carded, task, 0.5) == Estimate(
        0.999, None, "m/card.json, 10 disks at T=0.5, teacher-forced p")
    assert accuracy.card_accuracy(carded, task, 0.7) is None
    # the sim never reads a model's card
    assert model_accuracy(calibration=None, profile=carded, task=task, temperature=0.1,
                          backend="sim").measured is None


def test_default_k_is_auto_only_when_the_accuracy_was_measured():
    sim_only = ModelAccuracy(told=Estimate(0.99, None, "the sim backend's --sim-error"))
    assert choose_k(None, sim_only, 1023, 0.95).k == accuracy.DEFAULT_K
    assert choose_k("auto", sim_only, 1023, 0.95).k == k_min(0.99, 1023, 0.95)
    measured = ModelAccuracy(measured=Estimate(0.99, 0.9, "c.json"))
    assert choose_k(None, measured, 1023, 0.95).k == k_min(0.9, 1023, 0.95)
    assert choose_k(5, measured, 1023, 0.95).k == 5
    assert choose_k(None, measured, 1023, 0.95, rule="first-to-k").k == accuracy.DEFAULT_K
    with pytest.raises(UsageError, match="--k auto picks k by the scaling law"):
        choose_k("auto", measured, 1023, 0.95, rule="first-to-k")
    with pytest.raises(UsageError, match="needs a measured accuracy for vllm"):
        choose_k("auto", ModelAccuracy(), 1023, 0.95, backend="vllm")


def test_the_class_table_sets_k_over_the_cards_single_p():
    known = ModelAccuracy(measured=Estimate(0.999, 0.998, "card.json"),
                          classes=accuracy.ClassTable({"easy": (1000, [1.0]),
                                                       "hard": (10, [0.9, 0.8])}, "cc.json"))
    got = choose_k("auto", known, 1010, 0.95)
    assert got.record["k_auto"]["by_class"] and got.record["k_auto"]["setter"] == "hard"
    assert got.k > k_min(0.998, 1010, 0.95)


def test_a_flag_p_wins_over_the_file_and_says_so(cal):
    acc = accuracy.plugged(calibration=cal, paper_figures=None, p=0.99, tokens_out=None,
                           tokens_in=None, valid=None, tokens_per_second=None,
                           run_steps=1023, target=0.95)
    assert acc.p == 0.99 and acc.tokens_out == 300.0 and acc.source.startswith("--p (the rest")


def test_no_command_imports_another_command():
    """commands/ holds commands and their shared helpers (checks, common, levers, settings); a
    command that needs another's code means that code belongs in a shared module."""
    folder = Path(bench_command.__file__).parent
    helpers = {"checks", "common", "levers", "settings"}
    commands = {f.stem for f in folder.glob("*.py")} - helpers - {"__init__"}
    for f in folder.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = {node.module} if node.module else {a.name for a in node.names}
                assert not names & commands, f"{f.name} imports {names & commands}"
