"""A run done in segments (`solve --steps A:B` one after another) joined into one report
(maker_local/analysis/segments.py, scripts/join_segments.py): sums and histograms of the
segments, and a clear refusal when the segments do not make one run."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, load_json, sim_solve
from maker_local.analysis.segments import SegmentError, join

SIM = ["--disks", "8", "--k", "3", "--sim-error", "0.01", "--seed", "5", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Steps 0..99 and 100..254 of 8 disks as two slice runs, and the whole run, on the sim."""
    base = tmp_path_factory.mktemp("segments")
    out = {}
    for name, steps in (("a", ["--steps", "0:100"]), ("b", ["--steps", "100:255"]),
                        ("whole", [])):
        r = sim_solve(*SIM, *steps, "--run-dir", base / name)
        assert r.returncode == 0, r.stderr
        out[name] = load_json(base / name / "report.json")
    return base, out


def test_two_segments_join_into_the_report_of_the_whole_run(runs):
    base, rep = runs
    joined = join([rep["b"], rep["a"]])  # any order
    whole = rep["whole"]
    assert joined["steps"] == {**whole["steps"], "errors": 0}
    assert joined["steps"]["decided"] == 255 == whole["steps"]["decided"]
    for key in ("total", "valid", "flagged"):
        assert joined["samples"][key] == rep["a"]["samples"][key] + rep["b"]["samples"][key]
    hist = {v: rep["a"]["votes_histogram"].get(v, 0) + rep["b"]["votes_histogram"].get(v, 0)
            for v in {*rep["a"]["votes_histogram"], *rep["b"]["votes_histogram"]}}
    assert joined["votes_histogram"] == {v: hist[v] for v in sorted(hist, key=int)}
    votes = sum(int(v) * c for v, c in hist.items())
    assert joined["votes_per_step"]["mean"] == round(votes / 255, 4)
    assert joined["votes_per_step"]["max"] == max(int(v) for v in hist)
    assert [s["steps"] for s in joined["segments"]] == [[0, 100], [100, 255]]
    assert joined["tokens"]["out"] == rep["a"]["tokens"]["out"] + rep["b"]["tokens"]["out"]
    # the correlation block reads counts only: the joined run's equals the whole run's
    for key in ("steps", "votes", "error", "rho", "collisions", "hopeless", "expected_wrong"):
        assert joined["correlation"][key] == whole["correlation"][key], key


def test_the_script_writes_the_report_and_its_plots(runs, tmp_path):
    base, rep = runs
    seg = tmp_path / "segments"
    seg.mkdir()
    for name in ("a", "b"):
        (seg / f"{name}.json").write_text(json.dumps(rep[name]))
    out = tmp_path / "joined" / "report.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "join_segments.py"), str(seg),
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "255 / 255 decided, 0 errors" in r.stdout
    assert load_json(out)["steps"]["decided"] == 255
    assert (out.parent / "votes.png").exists() and (out.parent / "undecided.png").exists()
    (seg / "b.json").unlink()  # a gap: said, with the slice to run
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "join_segments.py"), str(seg),
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "--steps 100:255" in r.stderr, r.stderr


def test_segments_that_are_not_one_run_are_refused(runs):
    _, rep = runs
    a, b = rep["a"], rep["b"]
    with pytest.raises(SegmentError, match="overlap"):
        join([a, b, a])
    with pytest.raises(SegmentError, match="not the same run"):
        join([a, {**b, "k": 5}])
    with pytest.raises(SegmentError, match="against the reference"):
        join([a, {**b, "steps": {**b["steps"], "errors": 1}}])
    with pytest.raises(SegmentError, match="not finished"):
        join([a, {**b, "finished": False}])
    with pytest.raises(SegmentError, match="did not verify"):
        join([a, {**b, "ledger": {**b["ledger"], "verified": False}}])
    with pytest.raises(SegmentError, match="no segment"):
        join([])


def _pooled(rep, *names):
    return {**rep, "pool": {"rotation": [0, 1], "escalate": [2], "contest_after": 9,
                            "contested": {"steps": 0, "first": []},
                            "sources": [{"source": i, "name": n, "role": None, "samples": 1,
                                         "valid": 1, "right": 1, "wrong": 0}
                                        for i, n in enumerate(names)]}}


def test_a_segment_whose_escalation_never_ran_joins_the_one_where_it_did(runs):
    """A pooled report lists only the sources that voted: the escalation's appears only in
    the segments that had a contested step; the segments still make one run."""
    _, rep = runs
    a = _pooled(rep["a"], "main", "second", "escalation")
    b = _pooled(rep["b"], "main", "second")
    joined = join([a, b])
    assert [s["name"] for s in joined["pool"]["sources"]] == ["main", "second", "escalation"]
    assert [s["samples"] for s in joined["pool"]["sources"]] == [2, 2, 1]
    with pytest.raises(SegmentError, match="source 1 is 'other'"):
        join([a, _pooled(rep["b"], "main", "other")])
    with pytest.raises(SegmentError, match="lever plan"):
        join([a, {**b, "pool": {**b["pool"], "contest_after": 5}}])
