"""Every task on every engine backend that runs on a CPU: the built-in tasks, README's example
task (taken from README itself) and the Countdown task of tests/tasks/test_task_contract.py, each
solved through the CLI on in-process vLLM (vllm-cpu), a real vLLM OpenAI server on 127.0.0.1
(vllm-http, one server for every case) and transformers + Outlines (hf).

The model is the tests' tiny random model, so a run's answers are random and its errors against
the reference are expected (exit code 1). What is checked is what a backend must guarantee
whatever the model: the run finishes with every step decided, every sample in the ledger is a
vote or a red flag with its reason, a constrained sample that stopped by itself is in the task's
format (`task.constraint(x).regex`), token counts are recorded and within the cap, no two
samples share a seed, no request failed, and `verify` and `report --json` read the ledger.
"""
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
    pytest.importorskip("vllm", reason="vLLM not installed (bash scripts/setup.sh installs it)")

from conftest import run_sub  # noqa: E402
from test_engines import ledger_checks  # noqa: E402
from test_task_contract import env_with  # noqa: E402

from maker_local.tasks import from_describe  # noqa: E402

pytestmark = pytest.mark.engine

CAP = 32  # --max-tokens: each task's answer fits (Collatz's longest is 20 tokens with eos)
PAPER_CAP = 64  # Hanoi, paper style: 3 disks take ~50 tokens; a random, longer state is capped

# (--task, its flags, steps); each a handful of steps, so a case costs the engine's start
TASKS = [
    ("hanoi", ["--disks", "3", "--style", "compact"], 7),
    ("multiply", ["--digits", "3x2"], 6),
    ("collatz_task:Collatz", ["--number", "5"], 5),  # README's example task
    ("countdown_task:Countdown", ["--from", "5"], 5),  # the task defined in the tests
]
BACKENDS = ["vllm", "vllm-http", "hf"]
CASES = [pytest.param(b, *t, id=f"{b}-{t[0].split(':')[0]}") for b in BACKENDS for t in TASKS]


def cli(env: dict, *args) -> subprocess.CompletedProcess:
    return run_sub(*args, env=env, timeout=900)  # an engine start on a busy 2-core machine


def solve(backend: str, task: str, flags: list, run: Path, tiny: Path, plugin_dir: Path, request,
          cap: int = CAP, max_samples: int = 200) -> subprocess.CompletedProcess:
    """`maker-local solve` with k = 1 (one valid vote decides a step), every text kept."""
    if backend == "vllm-http":
        engine = ["--base-url", request.getfixturevalue("server")]  # conftest: one server
    elif backend == "vllm":
        engine = ["--model", tiny, "--max-model-len", "4096"]
    else:
        engine = ["--model", tiny]
    return cli(env_with(plugin_dir), "solve", "--task", task, *flags, "--backend", backend,
               *engine, "--k", "1", "--max-tokens", cap, "--max-samples", max_samples,
               "--keep-text", "all", "--run-dir", run, "--json", "--quiet")


def check_ledger(run: Path, task_described: dict, plugin_dir: Path, cap: int = CAP) -> list:
    """What every backend owes the ledger; returns the flags seen."""
    con = ledger_checks(run, cap)  # votes or flags with reasons, distinct seeds, usage <= cap
    q = con.execute
    flags = sorted(f for (f,) in q("SELECT DISTINCT flag FROM samples WHERE flag IS NOT NULL"))
    assert set(flags) <= {"length", "parse", "rule"}, flags  # never an "error": no failed request
    assert q("SELECT COUNT(*) FROM failures").fetchone()[0] == 0
    # a capped sample used the whole cap; every other one stopped by itself, so it is in the
    # task's constrained format, whether or not the task's parser then accepts it
    assert q("SELECT COUNT(*) FROM samples WHERE flag = 'length' AND tokens_out != ?",
             (cap,)).fetchone()[0] == 0
    sys.path.insert(0, str(plugin_dir))
    try:
        task = from_describe(task_described)  # the run's own task, as its ledger describes it
    finally:
        sys.path.remove(str(plugin_dir))
    rows = q("SELECT step, text FROM samples WHERE flag IS NULL OR flag != 'length'").fetchall()
    assert rows
    for step, text in rows:
        assert text is not None, (step, "--keep-text all keeps every sample's text")
        # (the constraints of these tasks do not depend on the input, so the reference input
        # of the step stands for the one the sample saw)
        regex = task.constraint(task.input_at(step)).regex
        assert re.fullmatch(regex, text), (step, text, regex)
    con.close()
    return flags


def verify_and_report(run: Path, plugin_dir: Path) -> dict:
    """`verify` passes and `report --json` reads the ledger; returns that report."""
    env = env_with(plugin_dir)
    v = cli(env, "verify", run)
    assert v.returncode == 0 and "the ledger holds up" in v.stdout, v.stdout + v.stderr
    r = cli(env, "report", run, "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


@pytest.mark.parametrize("backend,task,flags,steps", CASES)
def test_every_task_on_every_cpu_backend(backend, task, flags, steps, tiny, plugin_dir,
                                         tmp_path, request):
    run = tmp_path / "run"
    r = solve(backend, task, flags, run, tiny, plugin_dir, request)
    assert r.returncode in (0, 1), r.stderr[-3000:]  # 1: errors vs the reference (random model)
    rep = json.loads(r.stdout)
    assert rep["backend"].replace("_", "-") == backend and rep["finished"]
    assert rep["steps"]["decided"] == rep["steps"]["total"] == steps
    assert (rep["steps"]["errors"] == 0) == (r.returncode == 0)
    assert rep["samples"]["valid"] >= steps and rep["samples"]["flagged_by_reason"]["error"] == 0
    assert rep["failures"]["requests"] == 0  # a healthy engine answers every request

    check_ledger(run, rep["task"], plugin_dir)
    with sqlite3.connect(run / "ledger.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM decided").fetchone()[0] == steps

    got = verify_and_report(run, plugin_dir)
    assert got["steps"] == rep["steps"] and got["samples"] == rep["samples"]
    assert got["task"] == rep["task"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_hanoi_in_the_papers_style_on_every_cpu_backend(backend, tiny, plugin_dir, tmp_path,
                                                        request):
    """Hanoi's default (paper) style: the grammar bounds the answer's shape, not its content,
    so a random model's states break the rules (each disk once) and the parser red-flags
    nearly every sample. Each sample is still in the format, flagged with its reason, and a
    step that stays undecided stops the run (exit 3) with a ledger that verifies."""
    run = tmp_path / "run"
    r = solve(backend, "hanoi", ["--disks", "3"], run, tiny, plugin_dir, request, cap=PAPER_CAP,
              max_samples=4)
    assert r.returncode in (0, 1, 3), r.stderr[-3000:]
    rep = verify_and_report(run, plugin_dir)
    assert rep["task"]["style"] == "paper" and rep["backend"].replace("_", "-") == backend
    assert rep["samples"]["flagged_by_reason"]["error"] == 0 and rep["failures"]["requests"] == 0
    if r.returncode == 3:
        assert "undecided after 4 samples" in r.stderr, r.stderr[-3000:]
        assert not rep["finished"] and rep["steps"]["decided"] < rep["steps"]["total"]
        assert rep["samples"]["flagged"] > 0
    else:
        assert rep["finished"] and rep["steps"]["decided"] == rep["steps"]["total"] == 7
    check_ledger(run, rep["task"], plugin_dir, PAPER_CAP)
