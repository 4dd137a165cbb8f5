"""A run killed with SIGKILL at any moment resumes to exactly the uninterrupted result."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_sub

# enough rounds (small window) and enough trouble (flags, contested steps) to be interesting
ARGS = ["solve", "--backend", "sim", "--disks", "12", "--window", "128", "--k", "3",
        "--sim-error", "0.08",
        "--sim-valid", "0.9", "--seed", "5", "--quiet"]


def dump(run_dir):
    """Every ledger row that a resumed run must reproduce (timings excluded)."""
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    out = {
        "samples": con.execute("SELECT step, idx, epoch, round, seed, temperature, answer, flag,"
                               " detail, tokens_in, tokens_out, text FROM samples "
                               "ORDER BY step, idx").fetchall(),
        "answers": con.execute("SELECT * FROM answers ORDER BY step, epoch, id").fetchall(),
        "decided": con.execute("SELECT * FROM decided ORDER BY step").fetchall(),
        "rounds": con.execute("SELECT round, requests, samples, decided FROM rounds "
                              "ORDER BY round").fetchall(),
    }
    con.close()
    return out


def report(run_dir):
    r = json.loads((run_dir / "report.json").read_text())
    r.pop("wall_seconds")
    r.pop("run_dir")
    r.pop("resumes")  # compared on its own
    return r


def rounds_in(path):
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        n = con.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0


def kill_midway(args, run_dir, after_rounds):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "maker_local.cli", *args, "--run-dir",
                             str(run_dir)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while rounds_in(run_dir / "ledger.sqlite") < after_rounds:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("extra,after", [([], 3), ([], 12),
                                         (["--schedule", "sequential", "--disks", "7",
                                           "--sim-error", "0.3", "--k", "1", "--sim-wrong",
                                           "1"], 40),
                                         (["--sim-error", "0.1", "--k", "1", "--sim-wrong",
                                           "1", "--disks", "8"], 4),
                                         # a slice, with divergences (the chain replays
                                         # from the slice's first input)
                                         (["--steps", "1500:3000", "--sim-error", "0.1",
                                           "--k", "1", "--sim-wrong", "1"], 4),
                                         # the other voting rule
                                         (["--rule", "first-to-k", "--sim-error", "0.03"],
                                          5)])
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, extra, after):
    args = ARGS + extra
    whole = tmp_path / "whole"
    r = run_sub(*args, "--run-dir", whole)
    assert r.returncode in (0, 1), r.stderr
    killed = tmp_path / "killed"
    kill_midway(args, killed, after)
    partial = rounds_in(killed / "ledger.sqlite")
    assert 0 < partial < len(dump(whole)["rounds"])
    r2 = run_sub(*args, "--run-dir", killed, "--resume")
    assert r2.returncode in (0, 1), r2.stderr
    assert dump(killed) == dump(whole)
    assert report(killed) == report(whole)
    resumes = json.loads((killed / "report.json").read_text())["resumes"]
    assert resumes == 1 and json.loads((whole / "report.json").read_text())["resumes"] == 0


def test_resume_of_a_finished_run_adds_nothing(tmp_path):
    args = ARGS + ["--disks", "6", "--run-dir", tmp_path / "r"]
    assert run_sub(*args).returncode == 0
    before = dump(tmp_path / "r")
    assert run_sub(*args, "--resume").returncode == 0
    assert dump(tmp_path / "r") == before


def test_a_slice_votes_exactly_like_the_same_steps_of_a_full_run(tmp_path):
    """Seeds are a pure function of (run seed, step, vote index) and a slice starts from the
    reference input: without divergences, its ledger rows are the full run's rows of those
    steps, and its report covers only them."""
    args = ARGS + ["--sim-error", "0.02"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert run_sub(*args, "--run-dir", whole).returncode == 0
    r = run_sub(*args, "--steps", "1000:1700", "--run-dir", part, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads((part / "report.json").read_text())
    assert rep["slice"] == [1000, 1700]
    assert rep["steps"]["total"] == rep["steps"]["decided"] == 700
    assert rep["steps"]["errors"] == 0
    cols = "step, idx, seed, temperature, flag, tokens_in, tokens_out"
    a = sqlite3.connect(whole / "ledger.sqlite").execute(
        f"SELECT {cols} FROM samples WHERE step BETWEEN 1000 AND 1699 ORDER BY step, idx"
    ).fetchall()
    b = sqlite3.connect(part / "ledger.sqlite").execute(
        f"SELECT {cols} FROM samples ORDER BY step, idx").fetchall()
    assert a == b and len(b) >= 2100
    # out of range and malformed ranges are refused before anything is written
    bad = run_sub(*args, "--steps", "4000:5000", "--run-dir", tmp_path / "bad")
    assert bad.returncode == 2 and "outside the run" in bad.stderr
    assert not (tmp_path / "bad").exists()
    bad = run_sub(*args, "--steps", "10-20", "--run-dir", tmp_path / "bad")
    assert bad.returncode == 2 and "A:B" in bad.stderr
