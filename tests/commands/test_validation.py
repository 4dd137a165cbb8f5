"""Validate first, then touch the disk: every malformed invocation is one line and exit 2,
before a run dir, a ledger, a port or an engine exists; file-system faults are one line with
the fix, and the ledger they interrupt resumes to the uninterrupted result."""
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, sim_solve

SIM = ["solve", "--backend", "sim", "--disks", "4"]
BAD = [
    # solve: ranges
    SIM + ["--k", "0"], SIM + ["--k", "-3"], SIM + ["--k", "three"], SIM + ["--k", "100000"],
    SIM + ["--k", "5000"],  # more than --max-samples allows
    SIM + ["--target", "1.5"], SIM + ["--target", "0"], SIM + ["--target", "1"],
    SIM + ["--target", "nan"], SIM + ["--k", "3", "--target", "-1"],
    SIM + ["--temperature", "nan"], SIM + ["--temperature", "inf"],
    SIM + ["--temperature", "-0.1"], SIM + ["--temperature-first", "-1"],
    SIM + ["--max-samples", "0"], SIM + ["--max-samples", "-1"],
    SIM + ["--max-samples", "70000"], SIM + ["--max-tokens", "0"], SIM + ["--window", "0"],
    SIM + ["--seed", "-1"], SIM + ["--seed", "40000"], SIM + ["--price-per-hour", "-2"],
    SIM + ["--price-per-hour", "nan"], SIM + ["--metrics-port", "0"],
    SIM + ["--metrics-port", "65536"], SIM + ["--metrics-port", "http"],
    SIM + ["--concurrency", "0"], SIM + ["--concurrency", "-4"],
    SIM + ["--request-timeout", "0"], SIM + ["--max-model-len", "0"],
    SIM + ["--disks", "0"], SIM + ["--disks", "31"], SIM + ["--disks", "x"],
    SIM + ["--sim-error", "1.5"], SIM + ["--sim-valid", "0"],
    # solve: empty strings, contradictions, names
    SIM + ["--run-dir", ""], SIM + ["--run-dir", " "], SIM + ["--model", ""],
    SIM + ["--profile", ""], SIM + ["--style", ""], SIM + ["--style", "papr"],
    SIM + ["--constrained", "--unconstrained"], SIM + ["--unconstrained", "--constrained"],
    SIM + ["--schedule", "round"], SIM + ["--task", "chess"], ["solve", "--backend", "simm"],
    ["solve", "--backend", ""], SIM + ["--keep-text", "none"],
    SIM + ["--reasoning-effort", "max"], SIM + ["--calibration", "nothing.json"],
    SIM + ["--calibration", ""], SIM + ["--api", "rest"],
    ["solve", "--backend", "vllm-http", "--base-url", "127.0.0.1:8000"],
    ["solve", "--backend", "vllm-http", "--base-url", ""],
    ["solve", "--profile", "no-such-model"], SIM + ["--bogus"], SIM + ["extra"],
    # plan
    ["plan", "--error", "0.01", "--k", "0"], ["plan", "--error", "0.01", "--k", "-1"],
    ["plan", "--error", "-0.1"], ["plan", "--error", "1"], ["plan", "--error", "nan"],
    ["plan", "--error", "0.6"], ["plan"], ["plan", "--error", "0.01", "--steps", "0"],
    ["plan", "--error", "0.01", "--target", "1.5"], ["plan", "--error", "0.01", "--target", "0"],
    ["plan", "--error", "0.01", "--valid", "0"], ["plan", "--error", "0.01", "--valid", "1.1"],
    ["plan", "--error", "0.01", "--tokens-out", "-5"],
    ["plan", "--error", "0.01", "--tokens-in", "inf"],
    ["plan", "--error", "0.01", "--price-out", "-1"],
    ["plan", "--error", "0.01", "--price-in", "-1"], ["plan", "--calibration", "missing.json"],
    # report
    ["report", ""], ["report", "no-such-run"], ["report", "no-such-run", "--k", "0"],
    ["report", "no-such-run", "--rule", "best-of:3"],
    # serve (nothing is started: every one of these is refused first)
    ["serve", "--profile", "hanoi-step", "--port", "0", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--port", "65536", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--port", "-1", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--max-model-len", "0", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--timeout", "0", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--timeout", "nan", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--log-dir", "", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--host", "", "--dry-run"],
    ["serve", "--profile", "", "--dry-run"], ["serve", "--profile", "hanoi-stp", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--gpus", "", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--gpus", "a", "--dry-run"],
    ["serve", "--profile", "hanoi-step", "--cpu", "--gpus", "0", "--dry-run"], ["serve"],
    # calibrate
    ["calibrate", "--backend", "sim", "--samples", "1"],
    ["calibrate", "--backend", "sim", "--samples", "0"],
    ["calibrate", "--backend", "sim", "--steps-per-size", "0"],
    ["calibrate", "--backend", "sim", "--seed", "5000"],
    ["calibrate", "--backend", "sim", "--target", "2"],
    ["calibrate", "--backend", "sim", "--run-steps", "0"],
    ["calibrate", "--backend", "sim", "--disks", ""],
    ["calibrate", "--backend", "sim", "--disks", "3-99"],
    ["calibrate", "--backend", "sim", "--out", ""],
    ["calibrate", "--backend", "sim", "--temperature", "nan"],
    # bench
    ["bench", "--backend", "sim", "--k", "0"], ["bench", "--backend", "sim", "--target", "1"],
    ["bench", "--backend", "sim", "--steps", "0"], ["bench", "--backend", "sim", "--gpus", "0"],
    ["bench", "--backend", "sim", "--max-samples", "0"],
    ["bench", "--backend", "sim", "--price-per-hour", "-1"],
    ["bench", "--backend", "sim", "--max-seconds", "0"],
    ["bench", "--backend", "sim", "--run-steps", "0"],
    ["bench", "--backend", "sim", "--window", "0"],
    ["bench", "--backend", "sim", "--tokens-per-second", "-1"],
    ["bench", "--backend", "sim", "--out", ""],
    ["bench", "--backend", "sim", "--calibration", "missing.json"],
    # no command, unknown command
    [], ["slove"],
]


def test_over_a_hundred_malformed_invocations(cli, tmp_path, monkeypatch):
    """Each: exit 2, one line on stderr, nothing on stdout, nothing written anywhere."""
    monkeypatch.chdir(tmp_path)
    assert len(BAD) > 100
    for argv in BAD:
        code, out, err = cli(*argv)
        lines = err.strip().splitlines()
        assert code == 2, (argv, code, out, err)
        assert len(lines) == 1 and lines[0].startswith("maker-local: error:"), (argv, err)
        assert "Traceback" not in err and out == "", (argv, out)
        assert list(tmp_path.iterdir()) == [], (argv, list(tmp_path.iterdir()))


def one_line(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_a_used_run_dir_is_refused_before_an_engine_starts(tmp_path):
    """A finished run's dir, without --resume: refused at once, even for a backend that would
    first wait for a server (here: none listens)."""
    run = tmp_path / "run"
    assert sim_solve("--disks", "3", "--run-dir", run, "--quiet").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "maker_local.cli", "solve", "--backend",
                        "vllm-http", "--base-url", f"http://127.0.0.1:{port}/v1", "--disks", "3",
                        "--run-dir", str(run)], capture_output=True, text=True, timeout=20,
                       env=env)
    one_line(r, "already holds a run", "--resume")


def test_a_run_dir_that_is_a_file_or_under_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    one_line(sim_solve("--disks", "3", "--run-dir", f), "is a file", "choose a directory")
    one_line(sim_solve("--disks", "3", "--run-dir", f / "run"), "is a file")
    one_line(sim_solve("--disks", "3", "--calibration", tmp_path), "is not a file")
    one_line(sim_solve("--disks", "3", "--run-dir", tmp_path / "r", "--calibration", f),
             "--calibration")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may write to: chmod for a normal user, a read-only bind mount for
    root (who ignores permissions), else skipped."""
    src = tmp_path / "src"
    src.mkdir()
    if os.geteuid() != 0:
        src.chmod(0o555)
        yield src
        src.chmod(0o755)
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True)
    if ok.returncode != 0:
        pytest.skip("root without mount: cannot make a read-only directory")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only")
        yield ro
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def test_read_only_places_are_one_line_with_the_fix(read_only_dir, tmp_path):
    one_line(sim_solve("--disks", "3", "--run-dir", read_only_dir / "run"), "read-only")
    r = subprocess.run([sys.executable, "-m", "maker_local.cli", "calibrate", "--backend", "sim",
                        "--disks", "3", "--out", str(read_only_dir / "cal.json")],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    one_line(r, "read-only")


def dump(run_dir: Path) -> dict:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    out = {t: con.execute(f"SELECT {cols} FROM {t} ORDER BY 1, 2").fetchall() for t, cols in (
        ("samples", "step, idx, epoch, round, seed, temperature, answer, flag, detail, "
                    "tokens_in, tokens_out, text"),
        ("answers", "*"), ("decided", "*"), ("rounds", "round, requests, samples, decided"))}
    con.close()
    return out


def test_a_full_disk_mid_run_is_one_line_and_resumes(tmp_path):
    """A file-size limit (what a full disk looks like to a process, and needs no root) stops
    the run mid-way: one line, exit 2; --resume without it ends with the uninterrupted
    ledger."""
    args = ["--disks", "12", "--window", "256", "--sim-error", "0.05", "--quiet"]
    assert sim_solve(*args, "--run-dir", tmp_path / "whole").returncode in (0, 1)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "maker_local.cli", "solve", "--backend", "sim",
                        *args, "--run-dir", str(run)], capture_output=True, text=True, env=env,
                       preexec_fn=limit, timeout=300)
    one_line(r, "cannot write the run", "--resume")
    con = sqlite3.connect(run / "ledger.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert 0 < con.execute("SELECT COUNT(*) FROM decided").fetchone()[0] < 4095
    con.close()
    r = sim_solve(*args, "--run-dir", run, "--resume")
    assert r.returncode in (0, 1), r.stderr
    assert dump(run) == dump(tmp_path / "whole")


def test_serve_without_vllm_is_a_usage_error(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `vllm` program anywhere
    code, out, err = cli("serve", "--profile", "hanoi-step", "--gpus", "0",
                         "--log-dir", tmp_path / "logs")
    assert code == 2 and "'vllm' is not on PATH" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists()


NO_SERVER = ["--backend", "vllm-http", "--base-url", "http://127.0.0.1:9/v1",
             "--profile", "hanoi-step"]


@pytest.mark.parametrize("argv,outside", [
    (["solve", *NO_SERVER, "--disks", "25"], "25"),
    (["solve", *NO_SERVER, "--disks", "2", "--steps", "0:2"], "2"),
    (["calibrate", *NO_SERVER, "--disks", "3-22", "--out", "c.json"], "21, 22"),
    (["bench", *NO_SERVER, "--disks", "21"], "21"),
    (["solve", "--backend", "hf", "--profile", "hanoi-step", "--disks", "25"], "25"),
])
def test_sizes_the_model_does_not_support_are_refused_up_front(cli, tmp_path, monkeypatch,
                                                               argv, outside):
    """The profile's `disks` range: one line with the range and the card's reason, exit 2,
    before a server is asked (none listens here), an engine starts or a file is made."""
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*argv)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, (code, out, err)
    assert f"--disks {outside}: model profile hanoi-step supports 3..20 disks (" in lines[0]
    assert "Known limits" in lines[0] and "choose --disks in 3..20" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_sizes_inside_the_range_and_the_sim_are_not_refused(tmp_path):
    """The sim has no size limit, with or without the profile's settings."""
    r = sim_solve("--profile", "hanoi-step", "--max-tokens", "750", "--disks", "2",
                  "--run-dir", tmp_path / "r", "--quiet")
    assert r.returncode == 0, r.stderr
