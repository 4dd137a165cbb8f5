"""Failures are data: every backend failure is classified, asked again with the same seeds or
stops the run with one line; none is a vote, none uses a vote index.

A real vLLM server never sends most of these replies, so a small fake server (stdlib
http.server in a thread, tests only) plays a vLLM OpenAI server that answers right — the
reference answer of the step its request's seed names — except for the faults a test queues.
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import ROOT
from maker_local.backends.shaping import parse_body
from maker_local.core.types import Backend, Sample, SampleRequest
from maker_local.driver.failures import BackendFailed, Retrier
from maker_local.voting.schedule import Schedule, VoteConfig
from maker_local.voting.seeds import split_seed
from maker_local.tasks.hanoi import Hanoi

pytest.importorskip("openai", reason="the vllm-http backend needs openai")

DISKS = 4


def answer_text(task: Hanoi, seed: int) -> str:
    """The fake model: right, except one vote in five (by seed) gives a tempting wrong one."""
    _, step, idx = split_seed(seed)
    x = task.input_at(step)
    if seed % 5 == 3:
        return task.text(task.wrong_answers(x, 1)[0])
    return task.text(task.reference(x).answer)


GOOD = object()


class Fake:
    """A fake vLLM server; `faults` is a queue of faults, one per request, then good replies
    (or `always`, a fault for every request)."""

    def __init__(self, task: Hanoi):
        self.task, self.faults, self.always = task, [], None
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.reply(200, {"object": "list", "data": [{"id": "fake"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests += 1
                fault = fake.always or (fake.faults.pop(0) if fake.faults else GOOD)
                fake.handle(self, body, fault)

            def reply(self, code, obj=None, raw=None, ctype="application/json"):
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda *args: None  # a client that gave up: no noise
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def good(self, body):
        n = body["n"]
        choices = [{"index": i, "finish_reason": "stop", "token_ids": [1] * 7,
                    "message": {"role": "assistant",
                                "content": answer_text(self.task, body["seed"] + i)}}
                   for i in range(n)]
        return {"id": "x", "object": "chat.completion", "choices": choices,
                "usage": {"prompt_tokens": 50, "completion_tokens": 7 * n}}

    def handle(self, h, body, fault):
        good = self.good(body)
        if fault is GOOD:
            return h.reply(200, good)
        if fault == "truncated":
            return h.reply(200, raw=json.dumps(good).encode()[:40])
        if fault == "text":
            return h.reply(200, raw=b"Internal proxy page", ctype="text/plain")
        if fault == "html":
            return h.reply(200, raw=b"<html>gateway</html>", ctype="text/html")
        if fault == "list":
            return h.reply(200, [good])
        if fault == "not_objects":
            return h.reply(200, {**good, "choices": ["a"] * body["n"]})
        if fault == "bad_count":
            return h.reply(200, {**good, "usage": {"prompt_tokens": "many"}})
        if fault == "bad_ids":
            good["choices"][0]["token_ids"] = 7
            return h.reply(200, good)
        if fault == "wrong_n":
            return h.reply(200, {**good, "choices": good["choices"] + good["choices"][:1]})
        if fault == "null":
            return h.reply(200, {**good, "choices": None})
        if fault == "400":
            return h.reply(400, {"error": {"message": "max_tokens is too large"}})
        if fault == "500":
            return h.reply(500, {"error": {"message": "engine hiccup"}})
        if fault == "503":
            return h.reply(503, raw=b"loading")
        if fault == "hang":
            time.sleep(3)
            return h.reply(200, good)
        if fault == "reset":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return None
        raise AssertionError(fault)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = Fake(Hanoi(DISKS))
    yield f
    f.close()


def backend(url, **kw):
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    return VLLMHTTPBackend([url], model="fake", timeout=1.0, **kw)


def request(task, step=3, n=2, index=1):
    from maker_local.voting.seeds import sample_seed
    x = task.input_at(step)
    return SampleRequest(step, x, task.render(x), n, 0.1, 64, sample_seed(0, step, index),
                         first_index=index)


# ------------------------------------------------------------------------- one request
HARD = ["truncated", "text", "html", "list", "not_objects", "bad_count", "bad_ids", "wrong_n",
        "null", "400"]
SOFT = ["500", "503", "hang", "reset"]


@pytest.mark.parametrize("fault", HARD + SOFT)
def test_every_bad_reply_is_classified_error_samples(fake, fault):
    b = backend(fake.url)
    try:
        fake.always = fault
        (got,) = b.sample([request(fake.task)])
        assert len(got) == 2 and all(s.finish_reason == "error" for s in got)
        assert all(s.retryable is (fault in SOFT) for s in got), got[0]
        assert fake.url in got[0].error  # names the server
        fake.always = None
        (got,) = b.sample([request(fake.task)])
        assert [s.finish_reason for s in got] == ["stop", "stop"]
        assert got[0].text == answer_text(fake.task, request(fake.task).seed)
        assert (got[0].tokens_in, got[0].tokens_out) == (50, 7)
    finally:
        b.close()


@pytest.mark.parametrize("data", [None, [], "x", 3, {"choices": "x"}, {"choices": [{}, 1]},
                                  {"choices": [{"index": "0"}, {"index": 1}]},
                                  {"choices": [{"index": 0}, {"index": 0}]},
                                  {"choices": [{}, {}], "usage": {"completion_tokens": -1}},
                                  {"choices": [{}, {}], "usage": {"prompt_tokens": True}},
                                  {"choices": [{"message": "hi"}, {}]},
                                  {"choices": [{"message": {"content": 5}}, {}]}])
def test_parsing_a_reply_never_raises(data):
    req = request(Hanoi(DISKS))
    got = parse_body(json.dumps(data).encode(), req, 0.1)
    assert [s.finish_reason for s in got] == ["error", "error"]
    assert got[0].retryable is False and "malformed reply" in got[0].error
    got = parse_body(json.dumps(data).encode()[:-1] + b"\xff", req, 0.1, "http://h/v1")
    assert got[0].finish_reason == "error" and "http://h/v1" in got[0].error


def test_an_aborted_request_is_asked_again():
    req = request(Hanoi(DISKS))
    data = {"choices": [{"index": i, "text": "", "finish_reason": "abort"} for i in range(2)]}
    got = parse_body(json.dumps(data).encode(), req, 0.1)
    assert got[0].finish_reason == "error" and got[0].retryable is True


# -------------------------------------------------------------------------- the driver
class Flaky(Backend):
    """Wraps a backend; fails the requests `fail(call, request)` says, as error samples."""

    name = "flaky"

    def __init__(self, inner, fail):
        self.inner, self.fail, self.calls, self.asked = inner, fail, 0, []

    def sample(self, requests):
        self.calls += 1
        self.asked.append([(r.step, r.first_index, r.seed, r.n) for r in requests])
        out = self.inner.sample(requests)
        for i, r in enumerate(requests):
            retry = self.fail(self.calls, r)
            if retry is not None:
                out[i] = [Sample("", "error", 0, 0, 0, 0.0, f"fake {retry}", retry)] * r.n
        return out

    def describe(self):
        return self.inner.describe()

    def close(self):
        pass


def sim_backend(task):
    from maker_local.backends.sim import SimBackend, SimModel
    return SimBackend(task, SimModel(error=0.05, valid=0.9, seed=1))


def test_retrier_asks_failed_requests_again_with_the_same_seeds():
    task = Hanoi(DISKS)
    lines, waits = [], []
    flaky = Flaky(sim_backend(task), lambda call, r: True if call <= 2 and r.step % 2 else None)
    ret = Retrier(flaky, status=lines.append, sleep=waits.append)
    reqs = Schedule(task, VoteConfig(k=2, window=8)).next_batch()
    got = ret.sample(reqs)
    assert all(first.finish_reason != "error" for g in got for first in g)
    failed = [q for q in flaky.asked[0] if q[0] % 2]
    assert flaky.asked[1] == failed == flaky.asked[2]  # the same steps, indexes and seeds
    assert waits == [1.0, 2.0] and len(lines) == 3
    assert "failed: fake True" in lines[0] and "next try in 1 s" in lines[0]
    assert "failing since" in lines[1]


def test_retrier_stops_on_what_cannot_succeed_and_on_long_outages():
    task = Hanoi(DISKS)
    reqs = Schedule(task, VoteConfig(k=2, window=8)).next_batch()
    ret = Retrier(Flaky(sim_backend(task), lambda c, r: False), status=lambda _: None,
                  sleep=lambda _: None)
    with pytest.raises(BackendFailed, match="3 times in a row.*--resume"):
        ret.sample(reqs)
    now = [0.0]

    def sleep(s):
        now[0] += s
    ret = Retrier(Flaky(sim_backend(task), lambda c, r: True), retry_for=100,
                  status=lambda _: None, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(BackendFailed, match=r"for 1\d\d s"):
        ret.sample(reqs)
    assert 100 <= now[0] <= 130


def test_schedule_never_counts_a_failed_request_as_a_vote():
    """Without the driver's retry, a failed request's step is asked again next round with the
    same index and seed, and nothing of it is a row."""
    task = Hanoi(DISKS)
    sched = Schedule(task, VoteConfig(k=2, window=4))
    reqs = sched.next_batch()
    res = sim_backend(task).sample(reqs)
    res[0] = [Sample("", "error", 0, 0, 0, 0.0, "boom", True)] * reqs[0].n
    rows = sched.accept(reqs, res)
    assert all(r.step != reqs[0].step for r in rows.samples)
    again = sched.next_batch()
    first = [r for r in again if r.step == reqs[0].step]
    assert (first[0].first_index, first[0].seed) == (reqs[0].first_index, reqs[0].seed)


def dump(run_dir: Path, tokens_in: str = "tokens_in") -> dict:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    out = {"samples": con.execute("SELECT step, idx, epoch, round, seed, temperature, answer, "
                                  f"flag, detail, {tokens_in}, tokens_out, text FROM samples "
                                  "ORDER BY step, idx").fetchall(),
           "answers": con.execute("SELECT * FROM answers ORDER BY step, epoch, id").fetchall(),
           "decided": con.execute("SELECT * FROM decided ORDER BY step").fetchall(),
           "rounds": con.execute("SELECT round, requests, samples, decided FROM rounds "
                                 "ORDER BY round").fetchall()}
    con.close()
    return out


def test_a_run_that_met_failures_has_the_ledger_of_one_that_did_not(tmp_path, monkeypatch):
    from maker_local.driver import failures
    from maker_local.driver.run import RunSpec, solve
    monkeypatch.setattr(failures, "backoff", lambda attempt, retryable: 0.0)
    task = Hanoi(6)
    vote = VoteConfig(k=3, window=16, run_seed=2)
    solve(RunSpec(task, sim_backend(task), vote), tmp_path / "clean", progress=False)
    flaky = Flaky(sim_backend(task),
                  lambda call, r: (True if (r.seed * 7 + call) % 4 == 0 else
                                   False if (r.seed + call) % 11 == 0 else None))
    solve(RunSpec(task, flaky, vote), tmp_path / "flaky", progress=False)
    # the sim estimates prompt tokens from the first prompt of each call, so a retried
    # subset gets another estimate; everything else is identical
    assert dump(tmp_path / "flaky", "0") == dump(tmp_path / "clean", "0")
    con = sqlite3.connect(tmp_path / "flaky" / "ledger.sqlite")
    n, hard = con.execute("SELECT COUNT(*), SUM(retryable = 0) FROM failures").fetchone()
    assert n > 10 and hard > 0  # counted apart from the votes
    rep = json.loads((tmp_path / "flaky" / "report.json").read_text())
    assert rep["failures"]["requests"] == n


# ---------------------------------------------------------------------------- the CLI
def solve_cli(fake, run_dir, *extra, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "maker_local.cli", "solve", "--backend", "vllm-http",
         "--base-url", fake.url, "--disks", str(DISKS), "--k", "2", "--window", "4",
         "--max-tokens", "200", "--request-timeout", "1", "--run-dir", str(run_dir), "--quiet",
         *extra], capture_output=True, text=True, timeout=timeout, env=env)


def test_solve_over_transient_faults_equals_an_uninterrupted_run(fake, tmp_path):
    clean = solve_cli(fake, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    fake.faults = ["500", "reset", "hang", "503"]
    r = solve_cli(fake, tmp_path / "faults")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "requests failed" in r.stderr and "failing since" in r.stderr
    assert "next try in" in r.stderr and "same seeds" in r.stderr
    assert dump(tmp_path / "faults") == dump(tmp_path / "clean")


@pytest.mark.parametrize("fault,says", [("400", "HTTP 400"), ("null", "no choices list"),
                                        ("wrong_n", "3 choices for n=2"),
                                        ("text", "not JSON"), ("bad_count", "not a count")])
def test_solve_stops_on_replies_that_cannot_succeed(fake, tmp_path, fault, says):
    fake.always = fault
    r = solve_cli(fake, tmp_path / "run", "--temperature-first", "0.1")
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("maker-local: stopped:") and fake.url in last and says in last
    assert "--resume" in last
    con = sqlite3.connect(tmp_path / "run" / "ledger.sqlite")
    assert con.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 0  # no vote
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM failures").fetchone()[0] >= 3
    # the fault clears: --resume finishes the run, as if nothing had happened
    fake.always = None
    clean = solve_cli(fake, tmp_path / "clean", "--temperature-first", "0.1")
    again = solve_cli(fake, tmp_path / "run", "--temperature-first", "0.1", "--resume")
    assert again.returncode == clean.returncode == 0, again.stderr
    assert dump(tmp_path / "run") == dump(tmp_path / "clean")


def test_no_server_is_said_at_once(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="no vLLM server answered.*connection refused"):
        VLLMHTTPBackend([f"http://127.0.0.1:{port}/v1"], wait_for_server=3)
    assert time.monotonic() - t0 < 15


@pytest.mark.parametrize("flags,says", [(["--sim-valid", "0.005"], "check --style"),
                                        (["--max-tokens", "5"], "raise --max-tokens")])
def test_a_run_whose_samples_are_nearly_all_flagged_stops_with_one_line(tmp_path, flags, says):
    from conftest import sim_solve
    r = sim_solve("--disks", "8", "--run-dir", tmp_path / "r", "--quiet", *flags)
    assert r.returncode == 3, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert "red-flagged" in line and says in line and "--resume" in line
    con = sqlite3.connect(tmp_path / "r" / "ledger.sqlite")
    n, flagged = con.execute("SELECT COUNT(*), COUNT(flag) FROM samples").fetchone()
    assert 500 <= n < 2000 and flagged >= 0.99 * n  # stopped after the first rounds


def test_calibrate_asks_failed_requests_again_and_stops_on_what_cannot_succeed(fake, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "maker_local.cli", "calibrate", "--backend", "vllm-http",
           "--base-url", fake.url, "--disks", "4", "--steps-per-size", "3", "--samples", "2",
           "--max-tokens", "200", "--request-timeout", "1", "--out", str(tmp_path / "c.json")]
    fake.faults = ["500", "reset"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert "next try in" in r.stderr
    assert json.loads((tmp_path / "c.json").read_text())["samples"]["errors"] == 0
    fake.always = "400"
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 3, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "HTTP 400" in last and "Nothing was written" in last and "Traceback" not in r.stderr


def test_a_hung_server_is_said_while_waiting(fake, capsys, monkeypatch):
    from maker_local.backends import vllm_http
    monkeypatch.setattr(vllm_http, "STALL_SAY_S", 1.0)
    b = vllm_http.VLLMHTTPBackend([fake.url], model="fake", timeout=10.0)
    try:
        fake.faults = ["hang"]
        (got,) = b.sample([request(fake.task)])
        assert got[0].finish_reason == "stop"  # it answered, late
    finally:
        b.close()
    err = capsys.readouterr().err
    assert f"no reply from {fake.url} for" in err and "asked again after 10 s" in err
    assert "the run stops in about" in err and "--resume continues it" in err


def test_when_a_hung_server_stops_the_run_is_said_right():
    """The stall line's stop time is the Retrier's: failures for retry_for seconds in a row,
    each try waiting the request timeout."""
    from maker_local.backends.vllm_http import stall_line
    # 300 s timeout, 600 s of failures: the batch fails by 600 s (in flight, then a probe),
    # tries go on until 1,200 s, the one under way ends by 1,500 s
    assert "stops in about 24 min" in stall_line("u", 60, 5, 300, 600)
    assert "stops in about 3 min" in stall_line("u", 20, 5, 40, 80)


def test_a_server_that_accepts_and_never_answers_is_said_at_start(capsys, monkeypatch):
    """A socket that accepts connections and never replies (a wedged node): start-up says
    within a probe's timeout what it waits for, and gives up with one line."""
    from maker_local.backends import vllm_http
    monkeypatch.setattr(vllm_http, "PROBE_TIMEOUT_S", 0.5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        t0 = time.monotonic()
        with pytest.raises(ValueError, match="no vLLM server answered .* within 3 s"):
            vllm_http.VLLMHTTPBackend([url], retry_for=3.0, wait_for_server=3.0)
        assert time.monotonic() - t0 < 15
    err = capsys.readouterr().err
    assert f"waiting for a vLLM server: {url} did not answer within 0 s" in err
    assert "giving up after 3 s" in err and "--request-timeout" not in err
