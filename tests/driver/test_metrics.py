"""Prometheus counters fed by a real sim run's rounds, read over HTTP on 127.0.0.1."""
import re
import urllib.request

import pytest

pytest.importorskip("prometheus_client")

from maker_local.backends.sim import SimBackend, SimModel  # noqa: E402
from maker_local.driver.metrics import Metrics  # noqa: E402
from maker_local.voting.schedule import Schedule, VoteConfig  # noqa: E402
from maker_local.tasks.hanoi import Hanoi  # noqa: E402


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        text = r.read().decode()
    return {m[0]: float(m[1]) for m in re.findall(r"^(maker_\S+) (\S+)$", text, re.M)}


def test_counters_match_the_rounds_fed_to_them():
    task = Hanoi(8)
    sched = Schedule(task, VoteConfig(k=3, window=64), "rounds")
    sim = SimBackend(task, SimModel(error=0.15, valid=0.9))
    rounds = []
    for _ in range(3):
        reqs = sched.next_batch()
        rounds.append(sched.accept(reqs, sim.sample(reqs)))
    m = Metrics()
    port = m.start(0)
    try:
        for rows in rounds[:2]:
            m.on_round(rows)
        got = scrape(port)
        two = rounds[:2]
        assert got["maker_rounds_total"] == 2 and got["maker_round"] == 1
        assert got["maker_samples_total"] == sum(r.n_samples for r in two)
        assert got["maker_samples_valid_total"] == sum(r.valid for r in two)
        assert got["maker_steps_decided_total"] == sum(len(r.decided) for r in two) > 0
        assert got["maker_errors_total"] == sum(r.errors for r in two)
        assert got['maker_tokens_total{kind="out"}'] == sum(s.tokens_out for r in two
                                                            for s in r.samples)
        assert got['maker_tokens_total{kind="in"}'] == sum(s.tokens_in for r in two
                                                           for s in r.samples)
        parse = sum(r.flags.get("parse", 0) for r in two)
        assert got['maker_samples_flagged_total{reason="parse"}'] == parse > 0
        assert got['maker_samples_flagged_total{reason="rule"}'] == 0
        m.on_round(rounds[2])
        assert scrape(port)["maker_samples_total"] == sum(r.n_samples for r in rounds)
    finally:
        m.stop()


def test_solve_feeds_on_round(tmp_path):
    from maker_local.driver.run import RunSpec, solve

    task = Hanoi(6)
    m = Metrics()
    spec = RunSpec(task, SimBackend(task, SimModel(error=0.1, valid=0.9)), VoteConfig(k=2))
    rep = solve(spec, tmp_path / "run", progress=False, on_round=m.on_round)
    text = m.text()
    assert f"maker_steps_decided_total {float(rep['steps']['decided'])}" in text
    assert f"maker_samples_total {float(rep['samples']['total'])}" in text
    assert f'maker_tokens_total{{kind="out"}} {float(rep["tokens"]["out"])}' in text


def test_two_servers_do_not_share_a_port():
    a = Metrics()
    port = a.start(0)
    try:
        with pytest.raises(OSError, match="another --metrics-port"):
            Metrics().start(port)
    finally:
        a.stop()
