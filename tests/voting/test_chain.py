"""voting/chain.py: following a run's chain, replaying recorded votes, tallying rounds."""
import pytest

from maker_local.backends.sim import SimBackend, SimModel
from maker_local.core.records import DecisionRow, SampleRow
from maker_local.voting.chain import (Tally, chain_input, follow, inputs_from, replay,
                                      start_input)
from maker_local.voting.pool import Plan, PoolVotes
from maker_local.voting.schedule import RoundRows, Schedule, VoteConfig
from maker_local.voting.rules import RULES, AheadByK
from maker_local.tasks.hanoi import Hanoi


def reference_keys(task, x, n):
    keys = []
    for _ in range(n):
        ref = task.reference(x)
        keys.append(ref.key)
        x = task.next_input(x, ref.answer)
    return keys


def test_following_the_reference_keys_is_the_reference_trajectory():
    task = Hanoi(5)
    keys = reference_keys(task, task.initial(), 12)
    xs = list(inputs_from(task, task.initial(), keys))
    assert xs == [task.input_at(i) for i in range(1, 13)]
    assert chain_input(task, 0, 12, keys) == task.input_at(12)
    assert chain_input(task, 0, 12, None) == task.input_at(12)  # closed form, no replay
    assert chain_input(task, 0, task.num_steps(), None) is None  # past the end
    assert chain_input(task, 4, 9, keys[4:9]) == task.input_at(9)  # a slice
    assert start_input(task) == task.initial() and start_input(task, 4) == task.input_at(4)


class Counting:
    """A task that counts how often a key is parsed."""

    def __init__(self, task):
        self.task, self.parsed = task, 0

    def answer_from_key(self, key):
        self.parsed += 1
        return self.task.answer_from_key(key)

    def __getattr__(self, name):
        return getattr(self.task, name)


def test_follow_uses_the_reference_answer_when_the_vote_agrees():
    task = Counting(Hanoi(4))
    x = task.input_at(3)
    ref = task.reference(x)
    assert follow(task, x, ref.key, ref) == task.input_at(4)
    assert task.parsed == 0
    assert follow(task, x, ref.key) == task.input_at(4)  # no reference: the key is parsed
    assert task.parsed == 1
    # a vote that left the reference: the key's own answer
    wrong = task.parse(task.text(task.wrong_answers(x, 1)[0]), x).key
    assert wrong != ref.key
    assert follow(task, x, wrong, ref) == task.next_input(x, task.task.answer_from_key(wrong))
    assert task.parsed == 2


def test_chain_input_replays_a_chain_that_left_the_reference():
    """The schedule's chain after a run with divergences is the one chain.py derives from
    its decided keys (what a resume does)."""
    task = Hanoi(7)
    sched = Schedule(task, VoteConfig(k=2, window=16), "rounds")
    sim = SimBackend(task, SimModel(error=0.3, valid=0.9, seed=3))
    keys: dict[tuple[int, int, int], str] = {}
    decided = []
    for _ in range(40):
        reqs = sched.next_batch()
        rows = sched.accept(reqs, sim.sample(reqs))
        keys.update({(a.step, a.epoch, a.id): a.key for a in rows.answers})
        decided += rows.decided
    assert sched.epoch > 0, "the sim should have made the run diverge"
    won = [keys[(d.step, d.epoch, d.answer)] for d in decided]
    assert chain_input(task, 0, sched.done, iter(won)) == sched.chain_x


def test_replay_is_the_live_voters_decision():
    """Replay feeds recorded votes to a fresh voter: the winner and the votes it took are
    what a live voter fed the same votes one by one ends with."""
    votes = list("abbabbaab")
    for rule in RULES.values():
        for k in (1, 2, 3, 4):
            live = rule(k)
            used = next((i for i, key in enumerate(votes, 1) if live.add(key)), len(votes))
            assert replay(rule, k, votes) == (live.winner, used)
    assert replay(AheadByK, 2, list("ab")) == (None, 2)


def test_replay_of_a_pooled_step_is_the_pools_live_decision():
    keys = ["R", "W", "R", "R", "W", "R"]
    sources = [0, 1, 0, 2, 1, 2]
    for plan in (Plan((0, 1), (2,), 4), Plan((0, 1), (), 4), Plan((0,), (1, 2), 2)):
        live = PoolVotes(AheadByK, 2, plan)
        decided = any(live.add(key, src) for key, src in zip(keys, sources))
        expect = (live.winner, live.votes) if decided else (None, len(keys))
        assert replay(AheadByK, 2, keys, sources, plan) == expect
    with pytest.raises(ValueError, match="source"):
        replay(AheadByK, 2, keys, None, Plan((0, 1), (), 4))


def sample(step, flag=None, tin=10, tout=5, tre=1):
    return SampleRow(step, 0, 0, 0, 0, 0.0, None if flag else 0, flag, None, tin, tout, tre,
                     None, None, 0)


def test_tally_sums_rounds():
    r1 = RoundRows(0, samples=[sample(0), sample(0, "length"), sample(1)],
                   decided=[DecisionRow(0, 0, 0, 1, 2, 1, 1, 0, 0, 1)],
                   flags={"length": 1}, valid=2)
    r2 = RoundRows(1, samples=[sample(1, "parse", tin=20), sample(2)],
                   decided=[DecisionRow(1, 0, 1, 3, 4, 2, 2, 1, 1, 0)],
                   flags={"parse": 1}, valid=1, errors=1)
    t = Tally()
    t.add(r1)
    t.add(r2)
    assert (t.rounds, t.samples, t.valid, t.flagged, t.decided, t.votes, t.errors,
            t.divergences) == (2, 5, 3, 2, 2, 4, 1, 1)
    assert t.flags == {"length": 1, "parse": 1}
    assert (t.tokens_in, t.tokens_out, t.tokens_reasoning) == (60, 25, 5)
    quick = Tally()
    quick.add(r1, tokens=False)
    assert quick.tokens_in == 0 and quick.samples == 3
    assert Tally.of(r2).votes == 3 and Tally.of(RoundRows(5)).rounds == 1
