"""Replaying recorded votes under another rule: a hand-made ledger and a small sim run."""
import json
import re
import sqlite3
from types import SimpleNamespace

import pytest

from maker_local.analysis.replay import format_replay, parse_rule, replay
from maker_local.core.records import AnswerRow, DecisionRow, SampleRow
from maker_local.store import Ledger


def sample(step, idx, answer, flag=None):
    return SampleRow(step, idx, 0, 0, idx, 0.1, answer, flag, None, 10, 20, 0, 1.0, None)


@pytest.fixture
def hand(tmp_path):
    """k=2. Step 0: votes R W R R (R wins after 4). Step 1: W W (wrong, decided after 2).
    Step 2: a flagged sample, then R R."""
    led = Ledger.create(tmp_path, {"run": {"k": 2, "task": {"task": "hanoi", "steps": 3}}})
    rows = SimpleNamespace(
        round=0,
        samples=[sample(0, 0, 0), sample(0, 1, 1), sample(0, 2, 0), sample(0, 3, 0),
                 sample(1, 0, 0), sample(1, 1, 0),
                 sample(2, 0, None, "parse"), sample(2, 1, 0), sample(2, 2, 0)],
        answers=[AnswerRow(0, 0, 0, "R0", 1), AnswerRow(0, 0, 1, "W0", 0),
                 AnswerRow(1, 0, 0, "W1", 0), AnswerRow(2, 0, 0, "R2", 1)],
        decided=[DecisionRow(0, 0, 0, 4, 4, 1, 2, 0, 0, 1),
                 DecisionRow(1, 0, 0, 2, 2, 1, 2, 0, 1, 0),
                 DecisionRow(2, 0, 0, 2, 3, 1, 2, 0, 0, 1)])
    led.write_round(rows, 0.0, 1.0, 3)
    led.close()
    return tmp_path


def by_rule(result):
    return {(a["rule"], a["k"]): a for a in result["rules"]}


def test_replay_of_a_hand_made_ledger(hand):
    r = replay(hand, [("first-to-k", 2), ("first-to-k", 3), ("ahead-by-k", 1)])
    assert r["steps"] == 3 and r["k"] == 2
    rules = by_rule(r)
    run = rules[("ahead-by-k", 2)]
    assert run["as_run"] and run["decided"] == 3 and run["wrong"] == 1
    assert run["votes_mean"] == pytest.approx((4 + 2 + 2) / 3) and run["agree"] == 3
    assert run["wrong_steps"] == [1]
    f2 = rules[("first-to-k", 2)]  # step 0: R reaches 2 at vote 3
    assert (f2["decided"], f2["wrong"], f2["votes_max"]) == (3, 1, 3)
    f3 = rules[("first-to-k", 3)]  # steps 1 and 2 have only 2 votes: out of votes
    assert (f3["decided"], f3["out_of_votes"], f3["wrong"]) == (1, 2, 0)
    a1 = rules[("ahead-by-k", 1)]  # the first vote decides
    assert a1["votes_mean"] == 1 and a1["wrong"] == 1
    assert "first-to-k" in format_replay(r)


def test_large_counts_stay_in_their_columns():
    """A million-step run: every cell is its own column, two spaces from the next (the old
    fixed widths printed a max of 7 and 1,048,575 agreeing steps as '71,048,575')."""
    big = {"rule": "first-to-k", "k": 7, "as_run": False, "decided": 1_048_575, "wrong": 12,
           "out_of_votes": 1_048_575, "votes_mean": 7.25, "votes_max": 7, "agree": 1_048_575,
           "wrong_steps": []}
    r = {"run_dir": "runs/hanoi-20", "k": 7, "steps": 1_048_575,
         "rules": [{**big, "rule": "ahead-by-k", "as_run": True, "votes_max": 123_456}, big]}
    lines = format_replay(r).splitlines()
    head, own, other = (re.split(r"\s{2,}", line.strip()) for line in lines[1:4])
    assert head == ["rule", "k", "decided", "wrong", "out of votes", "votes/step", "max",
                    "agree"]
    assert own == ["ahead-by-k", "7", "1,048,575", "12", "1,048,575", "7.250", "123,456",
                   "1,048,575", "(as run)"]
    assert other == ["first-to-k", "7", "1,048,575", "12", "1,048,575", "7.250", "7",
                     "1,048,575"]
    # numbers are right-aligned: each row's cells end where the header's do
    ends = [m.end() for m in re.finditer(r"\S+(?: \S+)*", lines[1])]
    for line in lines[2:4]:
        assert [m.end() for m in re.finditer(r"\S+(?: \S+)*", line)][1:8] == ends[1:]


def test_parse_rule():
    assert parse_rule("first-to-k", 3) == ("first-to-k", 3)
    assert parse_rule("ahead-by-k:5", 3) == ("ahead-by-k", 5)
    with pytest.raises(ValueError, match="did you mean 'first-to-k'"):
        parse_rule("first-to-kk", 3)
    with pytest.raises(ValueError):
        parse_rule("first-to-k:0", 3)


def test_replaying_the_runs_own_rule_reproduces_a_sim_run(cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = cli("solve", "--backend", "sim",
                       "--disks", "7", "--sim-error", "0.2", "--sim-valid", "0.9",
                       "--run-dir", run, "--quiet")
    assert code in (0, 1), err
    code, out, err = cli("report", run, "--rule", "first-to-k", "--rule", "first-to-k:5",
                         "--json")
    assert code == 0, err
    r = json.loads(out)
    con = sqlite3.connect(run / "ledger.sqlite")
    n, votes, wrong = con.execute("SELECT COUNT(*), AVG(votes), SUM(correct = 0) "
                                  "FROM decided").fetchone()
    rules = by_rule(r)
    own = rules[("ahead-by-k", 3)]
    assert (own["decided"], own["agree"], own["wrong"]) == (n, n, wrong)
    assert own["votes_mean"] == pytest.approx(votes, abs=1e-4)
    f3 = rules[("first-to-k", 3)]
    # first-to-k stops no later than ahead-by-k: every recorded step decides
    assert f3["decided"] == n and f3["votes_mean"] <= own["votes_mean"]
    assert rules[("first-to-k", 5)]["out_of_votes"] > 0
    code, out, _ = cli("report", run, "--rule", "first-to-k", "--k", "2")
    assert code == 0 and "(as run)" in out
    assert any(line.split()[:2] == ["first-to-k", "2"] for line in out.splitlines())
    code, _, err = cli("report", run, "--rule", "majority")
    assert code == 2 and "unknown voting rule" in err
