"""vLLM's data parallelism over two nodes, for real: two `maker-local serve` process trees on
this machine over 127.0.0.1 (`scripts/two_nodes.sh`: node 0 the endpoint and one engine, node 1
one headless engine, started 20 s late), the commands README prints for a node.

One two-node setup serves the module (starting it is most of the time):
- a 20-disk run through the endpoint: every step decided, 0 errors, and vLLM's /metrics shows
  that the engines of both nodes served;
- node 1 SIGKILLed (every process of it at once) mid-run: the run ends with the same decisions
  and votes as the undisturbed one, every failed request asked again with its seeds, `verify`
  passing, and the line that says what failed;
- both nodes started again (vLLM's node 0 takes engines only while it starts): node 1's engine
  serves again.
On 2 CPU cores the two engines share the machine: this checks function, not speed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, rounds_written, run_sub
from test_failover import votes  # the ledger's votes, decisions and failures
from test_serve_dp import alive, descendants

if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
    pytest.importorskip("vllm", reason="vLLM not installed (bash scripts/setup.sh installs it)")

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SCRIPT = ROOT / "scripts" / "two_nodes.sh"
STEPS, WINDOW = "0:200", "100"  # 20-disk steps, 2 rounds
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree(pid: int) -> list[int]:
    """pid and every process below it."""
    return [pid, *descendants(pid)]


def per_engine(url: str) -> dict[str, float]:
    """Requests finished per DP engine (vLLM's /metrics, `engine` label)."""
    with _OPENER.open(url.removesuffix("/v1") + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("vllm:request_success_total{") and 'engine="' in line:
            engine = line.split('engine="', 1)[1].split('"', 1)[0]
            out[engine] = out.get(engine, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


class TwoNodes:
    """scripts/two_nodes.sh on free ports; `start` returns once the endpoint answers."""

    def __init__(self, logs: Path):
        self.logs, self.port, self.rpc = logs, free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None
        self.started: list[int] = []
        self.healthy_s = 0.0

    def start(self, late: int = 0) -> None:
        err = (self.logs / "script.err").open("a")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            ["bash", str(SCRIPT), "--port", str(self.port), "--rpc-port", str(self.rpc),
             "--lifetime", "600", "--log-dir", str(self.logs), "--late", str(late)],
            env=dict(os.environ, PYTHON=sys.executable), stdout=subprocess.PIPE, stderr=err,
            text=True, start_new_session=True)
        url = self.proc.stdout.readline().strip()  # printed once /health answers
        assert url == self.url, self.said()
        self.healthy_s = time.monotonic() - t0
        self.started = tree(self.proc.pid)

    def said(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.logs.glob("*.out"))) + \
            (self.logs / "script.err").read_text()

    def node_pid(self, node: int) -> int:
        """The `maker-local serve` of node `node`."""
        for pid in tree(self.proc.pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            except OSError:
                continue
            if b"serve" in cmd and cmd[-2:] == [b"--node-rank", str(node).encode()]:
                return pid
        raise AssertionError(f"no node {node}: {self.said()}")

    def kill_node(self, node: int) -> list[int]:
        """SIGKILL every process of a node at once, as a machine that dies."""
        pids = tree(self.node_pid(node))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                for pid in tree(self.proc.pid):
                    os.kill(pid, signal.SIGKILL)
                self.proc.wait()
        deadline = time.monotonic() + 30
        while any(alive(p) for p in self.started) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = [p for p in self.started if alive(p)]
        assert not left, f"left running: {left}"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    two = TwoNodes(tmp_path_factory.mktemp("two-nodes"))
    try:
        two.start(late=20)
        yield two
    finally:
        two.stop()


def solve(run_dir: Path, url: str, *extra: str) -> list[str]:
    return ["solve", "--backend", "vllm-http", "--profile", "hanoi-step", "--disks", "20",
            "--steps", STEPS, "--window", WINDOW, "--k", "3", "--run-dir", str(run_dir),
            "--base-url", url, "--no-draft-sampling", "--quiet", *extra]


def test_both_nodes_serve_a_run(nodes, tmp_path_factory):
    # node 1 came 20 s late: node 0 said what it waited for instead of a silent minute
    said = nodes.said()
    assert "vLLM opens the endpoint once all 2 engines have joined, node 1's too" in said
    assert f"node 1: node 0 answers at 127.0.0.1:{nodes.rpc}" in said
    assert "Traceback" not in said
    before = per_engine(nodes.url)
    run = tmp_path_factory.getbasetemp() / "undisturbed"
    r = run_sub(*solve(run, nodes.url), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "200 / 200 decided, 0 errors" in r.stdout, r.stdout
    after = per_engine(nodes.url)
    served = {e: after[e] - before.get(e, 0.0) for e in after}
    assert set(served) == {"0", "1"} and min(served.values()) > 0, served  # both nodes served
    assert votes(run)["failures"] == []


def test_node_1_killed_mid_run_loses_nothing(nodes, tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    clean = base / "undisturbed"
    if not (clean / "ledger.sqlite").exists():
        pytest.skip("needs test_both_nodes_serve_a_run's undisturbed run")
    hit = base / "killed"
    err = (base / "killed.err").open("w+")
    # plain decoding (rounds long enough to kill into); a request the dead engine holds is
    # asked again after 15 s
    run = subprocess.Popen([sys.executable, "-m", "maker_local.cli",
                            *solve(hit, nodes.url, "--request-timeout", "15")],
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                           stderr=err, text=True)
    try:
        deadline = time.monotonic() + 300
        while rounds_written(hit) < 1:
            assert run.poll() is None and time.monotonic() < deadline, "the run ended too soon"
            time.sleep(0.2)
        nodes.kill_node(1)
        out, _ = run.communicate(timeout=400)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    err.seek(0)
    stderr = err.read()
    # measured: vLLM's endpoint stays up and goes on with node 0's engine, but keeps giving
    # the dead engine requests that never return; each is asked again with its seeds
    assert run.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "did not answer within 15 s (--request-timeout) while it answered others" in stderr
    assert "200 / 200 decided, 0 errors" in out, out
    got, want = votes(hit), votes(clean)
    assert got["decided"] == want["decided"] and len(want["decided"]) == 200
    assert got["samples"] == want["samples"]  # nothing lost, nothing counted twice
    assert got["failures"], "no request failed: node 1 was not killed mid-run"
    seeds = {(s[0], s[1]): s[2] for s in got["samples"]}
    for step, idx, n, seed, error in got["failures"]:
        assert [seeds[(step, idx + j)] for j in range(n)] == [seed + j for j in range(n)]
    v = run_sub("verify", hit)
    assert v.returncode == 0, v.stdout + v.stderr
    # the script said so, and how node 1 comes back
    deadline = time.monotonic() + 10
    while "node 1 exited" not in nodes.said() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "start this script again (both nodes) to get node 1 back" in nodes.said()

    # both nodes again (a restarted node 1 alone finds no node 0 that takes engines)
    nodes.stop()
    nodes.start()
    before = per_engine(nodes.url)
    again = run_sub(*solve(base / "after", nodes.url, "--steps", "200:300"), timeout=300)
    assert again.returncode == 0 and "100 / 100 decided, 0 errors" in again.stdout, again.stderr
    after = per_engine(nodes.url)
    assert min(after[e] - before.get(e, 0.0) for e in ("0", "1")) > 0, (before, after)
