"""A backend is one module plus one registry line: the commands ask a backend's `Kind`, never
its name (tests/oracle_backend.py is the example)."""
import json
import re
from pathlib import Path

from conftest import ROOT
from maker_local.backends import BACKENDS, Kind, default_backend, kind


def test_a_new_backend_is_one_module_and_one_registry_line(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(BACKENDS, "oracle", Kind("oracle_backend:from_options", "none"))
    code, _, err = cli("solve", "--disks", "4", "--backend", "oracle", "--k", "2",
                       "--run-dir", tmp_path / "run", "--quiet")
    assert code == 0, err
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["steps"]["decided"] == 15 and report["steps"]["errors"] == 0
    assert report["samples"]["total"] == 30  # k = 2 agreeing votes a step, nothing else
    code, out, err = cli("verify", tmp_path / "run")
    assert code == 0, err


def test_a_misspelt_backend_is_one_line_with_the_near_miss(cli):
    code, _, err = cli("solve", "--disks", "3", "--backend", "vlm")
    assert code == 2 and "unknown backend 'vlm' (did you mean 'vllm'?)" in err


def test_kinds_say_what_the_commands_ask():
    assert not kind("sim").has_model and kind("vllm").local and kind("hf").local
    assert kind("vllm-http").served and not kind("vllm-http").local
    assert default_backend(served=True) == "vllm-http"


def test_no_backend_name_is_compared_outside_backends():
    names = "|".join(re.escape(n) for n in BACKENDS)
    pattern = re.compile(rf"""(==|!=|\bin \()\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "maker_local").rglob("*.py")
            if "backends" not in p.parts
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if pattern.search(line) and "backend" in line]  # not a package named vllm
    assert not hits, hits
