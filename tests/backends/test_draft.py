"""Sampling against a draft is exact: the pure walk against the closed-form probabilities, and
the in-process vLLM backend against plain decoding of the same model (a statistical test of
homogeneity on the same prompts)."""
import math
import os
from collections import Counter

import numpy as np
import pytest

from conftest import ROOT
from maker_local.voting.draft import walk


def chi2_homogeneity(a: Counter, b: Counter, min_count: int = 5) -> tuple[float, int]:
    """Chi-square statistic and degrees of freedom of 'a and b come from one distribution';
    categories rarer than min_count (pooled) are merged into one."""
    keys = [k for k in set(a) | set(b) if a[k] + b[k] >= min_count]
    rest_a = sum(a.values()) - sum(a[k] for k in keys)
    rest_b = sum(b.values()) - sum(b[k] for k in keys)
    cells = [(a[k], b[k]) for k in keys] + ([(rest_a, rest_b)] if rest_a + rest_b else [])
    na, nb = sum(a.values()), sum(b.values())
    stat = 0.0
    for x, y in cells:
        tot = x + y
        for obs, n in ((x, na), (y, nb)):
            exp = tot * n / (na + nb)
            stat += (obs - exp) ** 2 / exp
    return stat, max(1, len(cells) - 1)


def chi2_quantile(df: int, q: float = 0.999) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile."""
    z = {0.99: 2.3263, 0.999: 3.0902}[q]
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


# ------------------------------------------------------------------------------- pure walk
def test_walk_matches_the_autoregressive_distribution():
    rng = np.random.default_rng(0)
    length, vocab = 4, 5
    logits = rng.normal(0, 1.5, (length, vocab))
    lp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    draft = [1, 3, 0, 2]
    for temperature in (1.0, 0.7, 2.0):
        pt = np.exp(lp / temperature)
        pt /= pt.sum(axis=1, keepdims=True)
        n = 40000
        got = Counter()
        for s in range(n):
            w = walk(lp, draft, temperature, seed=1000 + s)
            got["kept" if w.kept else (w.at, w.token)] += 1
        exact = {"kept": float(np.prod(pt[np.arange(length), draft]))}
        reach = 1.0
        for t in range(length):
            for tok in range(vocab):
                if tok != draft[t]:
                    exact[(t, tok)] = reach * pt[t, tok]
            reach *= pt[t, draft[t]]
        assert set(got) <= set(exact)
        stat = sum((got[k] - n * p) ** 2 / (n * p) for k, p in exact.items())
        assert stat < chi2_quantile(len(exact) - 1), (temperature, stat)


def test_greedy_walk_follows_the_argmax():
    lp = np.log(np.array([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5 - 1e-9]]))
    assert walk(lp, [0, 1, 0], 0.0, seed=1).kept
    w = walk(lp, [0, 0, 0], 0.0, seed=1)
    assert (w.at, w.token) == (1, 1)


def test_walk_is_a_pure_function_of_the_seed():
    rng = np.random.default_rng(1)
    lp = np.log(rng.dirichlet(np.ones(6), size=8))
    draft = list(rng.integers(0, 6, 8))
    a = [walk(lp, draft, 1.0, seed=s) for s in range(200)]
    b = [walk(lp, draft, 1.0, seed=s) for s in range(200)]
    assert a == b and len(set(a)) > 5


# -------------------------------------------------------------------- the real engine
@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.parametrize("disks,temp", [(6, 2.0), (22, 1.0)])
def test_draft_sampling_matches_plain_decoding_in_vllm(disks, temp):
    """The bundled model where samples leave the draft often: at T=2 (vLLM's maximum; the
    whole-vocabulary path), and at T=1 (the top-1 path, whose leavers fetch their position's
    distribution) on 22 disks, a size it was not trained for. For each of a few steps, 300
    samples by plain vLLM decoding and 300 against the draft must come from one distribution
    (chi-square homogeneity on the sample texts)."""
    if os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1":
        pytest.importorskip("vllm")
    from maker_local.backends.vllm import VLLMBackend
    from maker_local.core.types import SampleRequest
    from maker_local.voting.seeds import sample_seed
    from maker_local.tasks.hanoi import Hanoi

    model = str(ROOT / "models" / "hanoi-step" / "model")
    task = Hanoi(disks, style="compact")
    be = VLLMBackend(model, dtype="float32", draft_sampling=True)
    try:
        steps = [0, 5, 31, 40]
        n = 300

        def reqs(draft: bool, base: int) -> list[SampleRequest]:
            out = []
            for s in steps:
                x = task.input_at(s)
                ref = task.reference(x)
                out.append(SampleRequest(s, x, task.render(x), n, temp, 64,
                                         sample_seed(base, s, 0), None, 0,
                                         draft=task.text(ref.answer) if draft else None))
            return out

        # the prompt the backend prefills is the one vLLM's chat renders
        x = task.input_at(5)
        o = be.llm.chat([task.render(x)], use_tqdm=False)[0]
        assert be.prompt_ids(task.render(x)) == list(o.prompt_token_ids)

        plain = be.sample(reqs(False, 1))
        drafted = be.sample(reqs(True, 2))
        assert be.draft_stats["prefills"] == len(steps)
        assert be.draft_stats["decoded"] > 100  # the test exercises the decoding path
        for s, a, b in zip(steps, plain, drafted):
            ca = Counter((x.text, x.finish_reason) for x in a)
            cb = Counter((x.text, x.finish_reason) for x in b)
            ref_text = task.text(task.reference(task.input_at(s)).answer)
            assert ca[(ref_text, "stop")] / n < 0.95  # a real mix of answers
            stat, df = chi2_homogeneity(ca, cb)
            assert stat < chi2_quantile(df), (s, stat, df, ca.most_common(4),
                                              cb.most_common(4))
            # a kept draft counts the draft's tokens (eos included); the same text can also
            # come from a sample that wrote a token that decodes to nothing (e.g. <pad>)
            kept = Counter(x.tokens_out for x in b
                           if x.text == ref_text and x.finish_reason == "stop")
            if kept:
                assert kept.most_common(1)[0][0] == len(ref_text) + 1
    finally:
        be.close()
