import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from maker_local.models import serving
from maker_local.models.profiles import load_profile
from maker_local.models.serving import ServerCommand, ServerError, Servers, launch, wait_healthy

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]


def lines(out: str) -> list[list[str]]:
    return [shlex.split(line) for line in out.splitlines()]


def test_dry_run_gpt_oss_dummy_weights(cli):
    code, out, err = cli("serve", "--profile", "gpt-oss-20b", "--gpus", "0", "--port", "8100",
                         "--dummy-weights", "--dry-run")
    assert code == 0, err
    (argv,) = lines(out)
    assert argv[:4] == ["CUDA_VISIBLE_DEVICES=0", "VLLM_SYSTEM_START_DATE=2026-01-01",
                        "vllm", "serve"] and argv[4] == "openai/gpt-oss-20b"
    assert "vllm serve openai/gpt-oss-20b" in out
    text = " ".join(argv)
    assert "--host 127.0.0.1 --port 8100" in text and "--load-format dummy" in text
    i = argv.index("--structured-outputs-config")
    assert argv[i + 1] == '{"backend":"xgrammar","disable_any_whitespace":true}'
    assert "--enable-prefix-caching" in argv


def test_dry_run_one_server_per_gpu(cli):
    code, out, _ = cli("serve", "--profile", "gpt-oss-20b", "--gpus", "0,1", "--port", "9000",
                       "--dry-run")
    assert code == 0
    a, b = lines(out)
    assert a[0] == "CUDA_VISIBLE_DEVICES=0" and b[0] == "CUDA_VISIBLE_DEVICES=1"
    assert a[a.index("--port") + 1] == "9000" and b[b.index("--port") + 1] == "9001"
    assert "--load-format" not in a


def test_dry_run_cpu(cli, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    code, out, _ = cli("serve", "--profile", "hanoi-step", "--cpu", "--python", "/venv/python",
                       "--max-model-len", "128", "--dry-run")
    assert code == 0
    (argv,) = lines(out)
    assert argv[:4] == ["VLLM_CPU_KVCACHE_SPACE=1", "/venv/python", "-m",
                        "vllm.entrypoints.openai.api_server"]
    assert "--enforce-eager" in argv and "CUDA_VISIBLE_DEVICES" not in out
    assert argv[argv.index("--model") + 1] == load_profile("hanoi-step").model
    assert argv[-2:] == ["--max-model-len", "128"]  # after the profile's args: it wins


def test_cpu_keeps_a_users_kv_cache_size():
    (c,) = serving.server_commands(load_profile("hanoi-step"), cpu=True,
                                   environ={"VLLM_CPU_KVCACHE_SPACE": "4"})
    assert "VLLM_CPU_KVCACHE_SPACE" not in c.env


def test_no_gpu_means_cpu(cli, monkeypatch):
    monkeypatch.setattr(serving, "has_cuda_gpu", lambda: False)
    code, out, err = cli("serve", "--profile", "hanoi-step", "--dry-run")
    assert code == 0 and "-m vllm.entrypoints.openai.api_server" in out
    assert "no CUDA GPU" in err


def test_unknown_profile_is_one_line_exit_2(cli):
    code, out, err = cli("serve", "--profile", "gpt-oss20b", "--dry-run")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "did you mean 'gpt-oss-20b'" in err and "hanoi-step" in err


@pytest.mark.parametrize("args,message", [
    (["--profile", "gpt-4.1-mini"], "hosted API"),
    (["--profile", "hanoi-step", "--cpu", "--gpus", "0"], "drop --gpus"),
    (["--profile", "hanoi-step", "--gpus", "0,0"], "distinct"),
    (["--profile", "hanoi-step", "--gpus", "x"], "--gpus takes"),
])
def test_usage_errors(cli, args, message):
    code, _, err = cli("serve", *args, "--dry-run")
    assert code == 2 and message in err


# ---------------------------------------------------------------- processes (no vllm needed)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def script(code: str, port: int, timeout: float = 20) -> ServerCommand:
    return ServerCommand([PY, "-c", textwrap.dedent(code)], {"STANDIN": "1"}, port, None,
                         name="standin", timeout=timeout)


def gone(pgid: int) -> bool:
    """No running process left in the group (zombies waiting for init do not count)."""
    return not serving._group_alive(pgid)


def running(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_launch_waits_for_health_and_stops_the_group(tmp_path):
    port = free_port()
    cmd = ServerCommand([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], {},
                        port, None, name="http", timeout=20)
    servers = Servers([cmd], tmp_path, health_path="/")  # http.server has no /health
    try:
        servers.start()
        assert servers.wait_healthy() == [f"http://127.0.0.1:{port}/v1"]
        pid = servers.procs[0].pid
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert r.status == 200
    finally:
        servers.stop(grace=5)
    assert gone(pid) and serving.port_free("127.0.0.1", port)


def test_launch_context_manager(tmp_path):
    port = free_port()
    cmd = ServerCommand([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], {},
                        port, None, name="http", timeout=20)
    with launch([cmd], tmp_path, health_path="/") as urls:
        assert urls == [f"http://127.0.0.1:{port}/v1"]
        assert serving.is_healthy(urls[0], "/")
    assert not serving.is_healthy(urls[0], "/")
    assert (tmp_path / f"http-{port}.log").exists()


def test_a_server_that_exits_shows_its_log(tmp_path):
    cmd = script("""
        import os, sys
        print("loading weights...")
        print("ValueError: no model at /nope", os.environ["STANDIN"])
        sys.exit(3)
    """, free_port())
    with pytest.raises(ServerError) as e, launch([cmd], tmp_path):
        pass
    msg = str(e.value)
    assert "exited with code 3" in msg and "ValueError: no model at /nope 1" in msg


def test_a_server_that_never_gets_healthy_times_out(tmp_path):
    cmd = script("import time; print('compiling', flush=True); time.sleep(60)", free_port(),
                 timeout=1)
    t0 = time.monotonic()
    with (pytest.raises(ServerError, match="not healthy after 1 s(.|\n)*compiling"),
          launch([cmd], tmp_path, grace=5)):
        pass
    assert time.monotonic() - t0 < 10


def test_stop_kills_children_that_ignore_sigterm(tmp_path):
    # Like vLLM's engine processes: a child in the server's process group that outlives
    # the leader unless the whole group is signalled.
    pidfile = tmp_path / "child.pid"
    cmd = script(f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """, free_port())
    servers = Servers([cmd], tmp_path)
    servers.start()
    pgid = servers.procs[0].pid
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text():
            break
        time.sleep(0.05)
    child = int(pidfile.read_text())
    t0 = time.monotonic()
    servers.stop(grace=0.5)
    assert time.monotonic() - t0 < 5
    assert gone(pgid) and not running(child)


def test_port_in_use_is_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with (pytest.raises(ServerError, match=f"port {port} .* in use"),
              launch([script("pass", port)], tmp_path)):
            pass


def test_missing_program(tmp_path):
    cmd = ServerCommand(["no-such-vllm-binary", "serve"], {}, free_port(), 0)
    with pytest.raises(ServerError, match="not found"), launch([cmd], tmp_path):
        pass


def test_wait_healthy_times_out_without_a_process():
    with pytest.raises(ServerError, match="not healthy"):
        wait_healthy(f"http://127.0.0.1:{free_port()}/v1", timeout=0.5)


FAKE_VLLM = """#!{python}
# Stands in for `python -m vllm.entrypoints.openai.api_server`: answers /health on --port.
import http.server, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def test_serve_command_end_to_end_with_a_fake_vllm(tmp_path):
    # The whole `maker-local serve` as a user runs it: URL on stdout once healthy, then
    # SIGTERM stops it and its server.
    (tmp_path / "weights").mkdir()
    (tmp_path / "fake.toml").write_text(
        'model = "weights"\nkind = "local"\napi = "chat"\nprompt_style = "compact"\n'
        "max_tokens = 8\ntemperature_first = 0.0\ntemperature = 1.0\n")
    fake = tmp_path / "python"
    fake.write_text(FAKE_VLLM.format(python=PY))
    fake.chmod(0o755)
    port = free_port()
    env = dict(os.environ, MAKER_LOCAL_MODELS=str(tmp_path), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([PY, "-m", "maker_local.cli", "serve", "--profile", "fake", "--cpu",
                             "--python", str(fake), "--port", str(port),
                             "--log-dir", str(tmp_path / "logs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == f"http://127.0.0.1:{port}/v1"
        assert serving.is_healthy(f"http://127.0.0.1:{port}/v1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    assert "stopping the servers" in proc.stderr.read()
    assert not serving.is_healthy(f"http://127.0.0.1:{port}/v1")
