"""Voting rules: one protocol for live voting, replay and verify; the rule is part of a run."""
import json
import re

import pytest

from conftest import ROOT
from maker_local.analysis.replay import replay
from maker_local.analysis.verify import verify
from maker_local.backends.sim import SimBackend, SimModel
from maker_local.driver.run import RunSpec, open_run
from maker_local.voting.schedule import Schedule, VoteConfig
from maker_local.voting.chain import replay as replay_step
from maker_local.voting.rules import (RULES, AheadByK, FirstToK, _Votes, get_rule, label,
                                    plans_k, rule_of)
from maker_local.store import Ledger, LedgerError
from maker_local.tasks.hanoi import Hanoi



def decide(rule: str, keys: list, k: int):
    """A step's recorded votes replayed under the rule named `rule`: (winner, votes used)."""
    return replay_step(get_rule(rule), k, keys)

def test_first_to_k_counts_to_k():
    v = FirstToK(3)
    assert v.needed() == 3
    assert not v.add("a") and not v.add("b") and not v.add("b")
    assert v.needed() == 1  # b has 2 of 3
    assert not v.add("a")
    assert v.add("a")  # a reaches 3 first, though it leads b by 1 only
    assert v.winner == "a" and v.votes == 5 and v.needed() == 0
    assert v.leader_and_margin() == ("a", 1)
    with pytest.raises(RuntimeError):
        v.add("a")


def test_the_rules_differ_where_they_should():
    votes = list("ababaa")
    assert decide("first-to-k", votes, 3) == ("a", 5)
    assert decide("ahead-by-k", votes, 2) == ("a", 6)
    assert decide("ahead-by-k", votes, 3) == (None, 6)  # a leads by 2 only


def test_registry_and_names():
    assert set(RULES) == {"ahead-by-k", "first-to-k"}
    assert all(RULES[name].name == name for name in RULES)
    with pytest.raises(ValueError, match="did you mean 'first-to-k'"):
        get_rule("first-to-kk")
    with pytest.raises(ValueError):
        FirstToK(0)
    assert rule_of({}) == "ahead-by-k" and rule_of({"rule": "first-to-k"}) == "first-to-k"
    assert label("ahead-by-k", 3) == "ahead-by-3" and label("first-to-k", 5) == "first-to-5"


@pytest.mark.parametrize("rule", sorted(RULES))
def test_live_voting_follows_the_rule(rule):
    """Each step is asked for exactly what the rule still needs, and every decision is what
    the rule makes of the step's votes in order."""
    task = Hanoi(8)
    sched = Schedule(task, VoteConfig(k=3, window=32, rule=rule), "rounds")
    sim = SimBackend(task, SimModel(error=0.05, valid=0.9, wrong=2, seed=7))
    keys: dict[tuple[int, int, int], str] = {}
    votes: dict[tuple[int, int], list[str]] = {}  # (step, epoch) -> vote keys in order
    decided = []
    while not sched.finished:
        reqs = sched.next_batch()
        for st in sched.pending.values():
            asked = sum(r.n for r in reqs if r.step == st.step)
            assert asked == (st.voter.needed() if st.voter.winner is None else 0)
        rows = sched.accept(reqs, sim.sample(reqs))
        keys.update({(a.step, a.epoch, a.id): a.key for a in rows.answers})
        for s in rows.samples:
            if s.answer is not None:
                votes.setdefault((s.step, s.epoch), []).append(
                    keys[(s.step, s.epoch, s.answer)])
        decided += rows.decided
    assert len(decided) == 255
    contested = 0
    for d in decided:
        mine = votes[(d.step, d.epoch)][:d.votes]  # later votes of the round do not count
        assert decide(rule, mine, 3) == (keys[(d.step, d.epoch, d.answer)], d.votes)
        contested += len(set(mine)) > 1
    assert contested > 5  # the rules had something to decide
    if rule == "first-to-k":  # the winner has exactly k votes
        assert all(votes[(d.step, d.epoch)][:d.votes].count(keys[(d.step, d.epoch, d.answer)])
                   == 3 for d in decided)


def solve(cli, run_dir, *extra):
    return cli("solve", "--backend", "sim", "--disks", "8", "--k", "2", "--sim-error", "0.05",
               "--sim-wrong", "2", "--sim-valid", "0.9", "--window", "64", "--quiet",
               "--run-dir", run_dir, *extra)


def test_a_first_to_k_run_end_to_end(cli, tmp_path):
    """Solve under first-to-k; the report names the rule; verify and replay check the
    decisions under it (ahead-by-k would disagree on this run's contested steps)."""
    run = tmp_path / "run"
    code, out, err = solve(cli, run, "--rule", "first-to-k")
    assert code in (0, 1), err
    rep = json.loads((run / "report.json").read_text())
    assert rep["rule"] == "first-to-k" and "k=2 (first-to-k)" in out
    r = replay(run, [("ahead-by-k", 2)])
    own, other = r["rules"]
    assert r["rule"] == "first-to-k" and own["rule"] == "first-to-k" and own["as_run"]
    assert own["decided"] == own["agree"] == rep["steps"]["decided"] == 255
    assert own["wrong"] == rep["steps"]["errors"]
    assert other["out_of_votes"] + (other["decided"] - other["agree"]) > 0  # rules differ
    v = verify(run)
    assert v["ok"] and v["rule"] == "first-to-k"
    code, out, err = cli("verify", run)
    assert code == 0 and "replayed under first-to-2" in out


def test_resume_keeps_the_rule(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = solve(cli, run, "--rule", "first-to-k", "--steps", "0:100")
    assert code in (0, 1), err
    code, _, err = solve(cli, run, "--steps", "0:100", "--resume")
    assert code == 2
    assert "voted under first-to-k" in err and "--rule first-to-k" in err
    code, _, err = solve(cli, run, "--steps", "0:100", "--resume", "--rule", "first-to-k")
    assert code in (0, 1), err


def test_unknown_rule_is_one_clear_line(cli, tmp_path):
    code, _, err = solve(cli, tmp_path / "run", "--rule", "first-to-kk")
    assert code == 2 and "did you mean 'first-to-k'" in err
    assert not (tmp_path / "run").exists()


def test_k_auto_is_for_ahead_by_k(cli, tmp_path):
    code, _, err = cli("solve", "--backend", "sim", "--disks", "4", "--k", "auto",
                       "--rule", "first-to-k", "--run-dir", tmp_path / "run", "--quiet")
    assert code == 2 and "--k auto" in err and "--k N" in err


def test_a_ledger_without_a_rule_is_ahead_by_k(tmp_path):
    """Ledgers written before the rule was recorded resume as ahead-by-k and refuse
    another rule."""
    task = Hanoi(4)
    backend = SimBackend(task, SimModel(error=0.0))
    spec = RunSpec(task, backend, VoteConfig(k=2))
    ident = spec.identity()
    del ident["rule"]
    Ledger.create(tmp_path, {"run": ident, "settings": {}}).close()
    led, resumed = open_run(spec, tmp_path, resume=True)
    led.close()
    assert resumed
    other = RunSpec(task, backend, VoteConfig(k=2, rule="first-to-k"))
    with pytest.raises(LedgerError, match="voted under ahead-by-k"):
        open_run(other, tmp_path, resume=True)
    assert verify(tmp_path)["rule"] == "ahead-by-k"
    assert replay(tmp_path, [])["rule"] == "ahead-by-k"


def test_bench_votes_under_the_rule(cli):
    code, out, err = cli("bench", "--backend", "sim", "--disks", "10", "--steps", "200",
                         "--warmup", "20", "--k", "3", "--rule", "first-to-k")
    assert code == 0, err
    r = json.loads(out.strip().splitlines()[-1])
    assert r["rule"] == "first-to-k" and r["decided"] == 200
    assert "k=3 (first-to-k)" in out
    code, _, err = cli("bench", "--backend", "sim", "--disks", "10", "--rule", "ahead-by")
    assert code == 2 and "did you mean 'ahead-by-k'" in err


def test_report_replays_against_the_runs_own_rule(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = solve(cli, run, "--rule", "first-to-k")
    assert code in (0, 1), err
    code, out, err = cli("report", run, "--rule", "ahead-by-k")
    assert code == 0, err
    assert "(run: first-to-k, k=2)" in out
    own = next(line for line in out.splitlines() if line.endswith("(as run)"))
    assert own.startswith("first-to-k")


def test_check_legal_is_not_the_voting_rule_and_its_old_name_still_works(cli, tmp_path):
    """--rules (the task's rule checks) was renamed --check-legal so that it cannot be taken
    for --rule (the voting rule); the old spelling works, says the new one, and runs the
    same run (a ledger started with one resumes with the other)."""
    code, _, err = cli("solve", "--disks", "3", "--backend", "sim", "--rules",
                       "--run-dir", tmp_path / "r", "--quiet")
    assert code == 0 and "--rules is now --check-legal" in err
    code, _, err = cli("solve", "--disks", "3", "--backend", "sim",
                       "--run-dir", tmp_path / "r", "--resume", "--quiet")
    assert code == 2 and "rules: ledger has True" in err  # the flag is part of the run
    code, _, err = cli("solve", "--disks", "3", "--backend", "sim", "--check-legal",
                       "--run-dir", tmp_path / "r", "--resume", "--quiet")
    assert code == 0, err


class InARow(_Votes):
    """A rule of the test's own: decided once k votes in a row agree (no odds written)."""

    __slots__ = ("run",)
    name = "k-in-a-row"

    def __init__(self, k: int):
        super().__init__(k)
        self.run: list[str] = []

    def needed(self) -> int:
        return 0 if self.winner is not None else self.k - len(self.run)

    def add(self, key: str) -> bool:
        if self.winner is not None:
            raise RuntimeError("vote added to a decided step")
        self.counts[key] = self.counts.get(key, 0) + 1
        self.run = self.run + [key] if self.run[-1:] == [key] else [key]
        if len(self.run) >= self.k:
            self.winner = key
        return self.winner is not None


class Margin(AheadByK):
    """Another name for ahead-by-k's decisions: it declares their odds, so k auto plans it."""

    __slots__ = ()
    name = "margin-k"


def test_a_new_rule_is_one_class_and_one_registry_line(cli, monkeypatch, tmp_path):
    """A rule registered from outside (here a test) votes in solve's sim runs, is recorded,
    verified and replayed under its own name; k auto asks the rule for its odds (no rule
    name is compared): one with none is refused, one with ahead-by-k's is planned."""
    monkeypatch.setitem(RULES, InARow.name, InARow)
    monkeypatch.setitem(RULES, Margin.name, Margin)
    assert not plans_k("k-in-a-row") and plans_k("margin-k") and plans_k("ahead-by-k")
    assert not plans_k("first-to-k")
    run = tmp_path / "run"
    code, out, err = solve(cli, run, "--rule", "k-in-a-row")
    assert code in (0, 1), err
    rep = json.loads((run / "report.json").read_text())
    assert rep["rule"] == "k-in-a-row" and "k=2 (k-in-a-row)" in out
    assert rep["steps"]["decided"] == 255
    assert decide("k-in-a-row", list("abaab"), 2) == ("a", 4)
    assert verify(run)["ok"]
    own = replay(run, [])["rules"][0]
    assert own["rule"] == "k-in-a-row" and own["decided"] == own["agree"] == 255
    code, _, err = cli("solve", "--backend", "sim", "--disks", "4", "--k", "auto",
                       "--rule", "k-in-a-row", "--run-dir", tmp_path / "auto", "--quiet")
    assert code == 2 and ("--k auto picks k by the scaling law of ahead-by-k voting; with "
                          "--rule k-in-a-row give --k N") in err
    code, _, err = cli("solve", "--backend", "sim", "--disks", "4", "--k", "auto",
                       "--sim-error", "0.01", "--rule", "margin-k",
                       "--run-dir", tmp_path / "margin", "--quiet")
    assert code == 0 and "k auto: k=2 is the smallest k" in err
    assert json.loads((tmp_path / "margin" / "report.json").read_text())["rule"] == "margin-k"


def test_no_rule_name_is_compared_outside_rules():
    """The commands and k auto ask a rule's class (`odds`, `plans_k`), never its name."""
    names = "|".join(re.escape(n) for n in [*RULES, "DEFAULT_RULE"])
    pattern = re.compile(rf"""(==|!=)\s*["']?({names})\b|\b["']?({names})["']?\s*(==|!=)""")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "maker_local").rglob("*.py")
            if p.name != "rules.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, hits
