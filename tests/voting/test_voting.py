import pytest

from maker_local.core.types import Sample
from maker_local.voting.redflags import classify
from maker_local.voting.chain import replay
from maker_local.voting.rules import AheadByK, FirstToK
from maker_local.tasks.base import Flag, Parsed
from maker_local.tasks.hanoi import Hanoi


def test_first_to_ahead_by_k():
    v = AheadByK(3)
    assert v.needed() == 3
    assert not v.add("a") and not v.add("a")
    assert v.needed() == 1
    assert not v.add("b")  # margin 1
    assert v.needed() == 2
    assert not v.add("a")  # 3-1: margin 2
    assert v.add("a")  # 4-1
    assert v.winner == "a" and v.needed() == 0 and v.votes == 5
    with pytest.raises(RuntimeError):
        v.add("a")


def test_three_way_margin_is_against_the_runner_up():
    v = AheadByK(2)
    for key in "abcaa":
        decided = v.add(key)
    assert decided and v.winner == "a"  # a=3, b=1, c=1


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        AheadByK(0)


def test_rules_replay():
    votes = list("abab" + "bb")
    assert replay(FirstToK, 3, votes) == ("b", 5)
    assert replay(AheadByK, 2, votes) == ("b", 6)
    assert replay(AheadByK, 2, list("ab")) == (None, 2)


def test_red_flags():
    task = Hanoi(3)
    x = task.initial()
    good = "move = [1, 0, 2]\nnext_state = [[3, 2], [], [1]]"
    assert isinstance(classify(Sample(good, "stop"), task, x), Parsed)
    capped = classify(Sample(good, "length"), task, x)
    assert isinstance(capped, Flag) and capped.reason == "length"
    err = classify(Sample("", "error", error="connection refused"), task, x)
    assert err.reason == "error" and "refused" in err.detail
    assert classify(Sample("move = [1, 0, 2]", "stop"), task, x).reason == "parse"
    illegal = "move = [1, 0, 1]\nnext_state = [[3, 2], [], [1]]"  # inconsistent state
    assert isinstance(classify(Sample(illegal, "stop"), task, x), Parsed)  # rules off: a vote
    assert classify(Sample(illegal, "stop"), task, x, rules=True).reason == "rule"
