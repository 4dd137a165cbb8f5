"""The house's layers point one way: a folder of maker_local imports only folders below it, and
no files import each other in a loop. Read from the source (every import, those inside
functions too), so a lazy import cannot hide an arrow back up.

The layer order, bottom first, written once here:
  core       types, errors, statistics, process guards (nothing else of maker_local)
  tasks      the tasks: steps, prompts, parsers
  voting     pure voting logic and its statistics (rules, schedules, k, correlation)
  store      the ledger (SQLite)
  models     profiles, reasoning markers, how servers are started
  backends   engines that answer sample requests (sim, vllm, vllm-http, hf)
  driver     a run: rounds, failures, the ledger it writes and the report it ends with
  calibrate  measuring a model's per-step accuracy
  analysis   reading runs: accuracy, bench slices, verify, replay, segments, coverage
  recipes    training the bundled models
  commands   the CLI's commands
  cli, __main__
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

LAYERS = ["core", "tasks", "voting", "store", "models", "backends", "driver", "calibrate",
          "analysis", "recipes", "commands", "cli", "__main__"]
PKG = ROOT / "maker_local"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, source: str | None = None) -> set[str]:
    """The maker_local modules a file imports (anywhere in it), as dotted names."""
    mod = _module(path)
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if not name.startswith("maker_local"):
                continue
            for alias in node.names:  # `from . import x` may name a module
                sub = f"{name}.{alias.name}"
                out.add(sub if _exists(sub) else name)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("maker_local")}
    return out


def _exists(name: str) -> bool:
    p = ROOT.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    files = {_module(f): f for f in PKG.rglob("*.py")}
    return {m: {t for t in _imports(f) if t in files and t != m} for m, f in files.items()}


def _folder(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package's face (__version__)


def test_every_folder_is_in_the_layer_order():
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    folders |= {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    assert folders <= set(LAYERS), f"place {sorted(folders - set(LAYERS))} in LAYERS"


def test_imports_point_down():
    up = []
    for mod, targets in _graph().items():
        a = _folder(mod)
        for t in targets:
            b = _folder(t)
            if a is None or b is None or a == b:
                continue
            if LAYERS.index(b) > LAYERS.index(a):
                up.append(f"{mod} -> {t} ({a} is below {b})")
    assert not up, "imports that run back up:\n" + "\n".join(sorted(up))


def test_no_files_import_each_other_in_a_loop():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    loops: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not loops, f"files that import each other: {loops}"


def test_the_check_sees_arrows_lazy_ones_too():
    """The reader is not blind: the graph has the arrows we know of, and an import inside a
    function counts as one."""
    g = _graph()
    assert "maker_local.voting.schedule" in g["maker_local.driver.run"]
    f = PKG / "core" / "errors.py"
    lazy = f.read_text() + "\n\ndef _probe():\n    from ..driver import run  # noqa\n"
    assert "maker_local.driver.run" in _imports(f, lazy)


def test_tests_live_in_the_folder_of_their_layer():
    """tests/ is grouped as the package is: a folder per layer (tests/voting/ holds the
    tests of maker_local/voting/), so a change's tests are found next to each other; only
    this file, about the whole house, stands at the top."""
    here = Path(__file__).parent
    loose = sorted(p.name for p in here.glob("test_*.py") if p.name != Path(__file__).name)
    assert not loose, f"move {loose} into the folder of the layer they test"
    folders = {p.parent.name for p in here.glob("*/test_*.py")}
    assert folders <= set(LAYERS), f"{sorted(folders - set(LAYERS))}: no such layer"
