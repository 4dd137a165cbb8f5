"""The levers on real in-process engines (issue 17), as a user runs them: hanoi-step v2.2
alone decides 20-disk step 315,391 wrong (it is confidently wrong there); with a second
opinion (hanoi-step votes in turn with it) and an escalation (hanoi-step decides a step the
two disagree on) the same slice has 0 errors, every vote's source is in the ledger, and
`verify` replays every decision."""
import json
import os
import sqlite3

import pytest

from conftest import run_sub

if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
    pytest.importorskip("vllm", reason="vLLM not installed (bash scripts/setup.sh installs it)")
pytestmark = pytest.mark.engine

SLICE = ["--disks", "20", "--steps", "315385:315395", "--profile", "hanoi-step-v2.2",
         "--k", "3"]
WRONG = 315391


def solve(run, *flags):
    r = run_sub("solve", *SLICE, *flags, "--run-dir", run, "--json", "--quiet", timeout=900)
    assert r.stdout, r.stderr[-3000:]
    return r, json.loads(r.stdout)


def ledger(run, sql, *args):
    con = sqlite3.connect(run / "ledger.sqlite")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def wrong_steps(run):
    return [s for (s,) in ledger(run, "SELECT step FROM decided WHERE correct = 0")]


def test_v22_alone_is_wrong_at_315391_and_the_second_opinion_with_escalation_is_not(tmp_path):
    alone, rep = solve(tmp_path / "alone")
    assert rep["steps"]["decided"] == 10 and rep["steps"]["errors"] == 1, alone.stderr[-2000:]
    assert rep["collisions"] == 1 and alone.returncode != 0
    assert wrong_steps(tmp_path / "alone") == [WRONG]

    run = tmp_path / "levers"
    lever, rep = solve(run, "--second-opinion", "hanoi-step", "--escalate", "hanoi-step")
    assert lever.returncode == 0, lever.stderr[-3000:]
    assert rep["steps"]["decided"] == 10 and rep["steps"]["errors"] == 0
    assert rep["collisions"] == 0 and wrong_steps(run) == []
    sources = {s["name"].split(" ")[0]: s for s in rep["pool"]["sources"]}
    assert sources["hanoi-step-v2.2"]["wrong"] >= 1  # v2.2 still votes wrong there ...
    assert rep["pool"]["contested"]["steps"] >= 1  # ... the two disagree, hanoi-step decides
    by_source = dict(ledger(run, "SELECT source, COUNT(*) FROM samples WHERE step = ? "
                                 "GROUP BY source", WRONG))
    assert by_source.get(0, 0) >= 1 and by_source.get(1, 0) >= 1  # both models voted there
    v = run_sub("verify", run, timeout=300)
    assert v.returncode == 0, v.stdout + v.stderr
