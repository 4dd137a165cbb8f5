import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maker_local.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, capsys=None) -> tuple[int, str, str]:
    """maker-local in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def run_sub(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """maker-local as a real subprocess (as a user runs it)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "maker_local.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def sim_solve(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`maker-local solve --backend sim ...` as a subprocess."""
    return run_sub("solve", "--backend", "sim", *args, timeout=timeout)


@pytest.fixture
def cli(capsys):
    def _run(*args):
        return run_cli(*args, capsys=capsys)
    return _run


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
