import pytest

from maker_local.backends.sim import SimBackend, SimModel
from maker_local.voting.schedule import Schedule, StuckStep, VoteConfig
from maker_local.voting.seeds import MAX_RUN_SEED, Temperatures, sample_seed, split_seed
from maker_local.tasks.hanoi import Hanoi


def drive(task, model, mode="rounds", **cfg):
    sched = Schedule(task, VoteConfig(**cfg), mode)
    sim = SimBackend(task, model)
    decided, requests, samples = [], [], []
    while not sched.finished:
        reqs = sched.next_batch()
        rows = sched.accept(reqs, sim.sample(reqs))
        requests += reqs
        decided += rows.decided
        samples += rows.samples
    return sched, decided, requests, samples


def test_seeds_are_a_pure_function_and_invertible():
    s = sample_seed(MAX_RUN_SEED, 2**30 - 1, 65535)
    assert s < 2**63
    assert split_seed(s) == (MAX_RUN_SEED, 2**30 - 1, 65535)


def test_requests_first_greedy_then_k_minus_one_and_no_seed_shared():
    task = Hanoi(8)
    _, _, reqs, samples = drive(task, SimModel(error=0.05, valid=0.9, seed=1), k=3,
                                run_seed=7)
    first = [r for r in reqs if r.first_index == 0]
    assert all(r.n == 1 and r.temperature == 0.0 for r in first)
    second = [r for r in reqs if r.first_index == 1]
    assert all(r.n == 2 and r.temperature == 0.1 for r in second)
    seeds = [r.seed + j for r in reqs for j in range(r.n)]
    assert len(seeds) == len(set(seeds)) == len(samples)
    assert all(split_seed(r.seed) == (7, r.step, r.first_index) for r in reqs)
    assert {r.max_tokens for r in reqs} == {750}
    assert all(r.constraint is not None and r.constraint.regex for r in reqs)


def test_each_round_asks_exactly_the_votes_still_needed():
    task = Hanoi(9)
    sched = Schedule(task, VoteConfig(k=4, window=64), "rounds")
    sim = SimBackend(task, SimModel(error=0.2, valid=0.8, seed=2))
    for _ in range(30):
        if sched.finished:
            break
        need = {st.step: st.voter.needed() for st in sched.pending.values()
                if st.voter.winner is None}
        reqs = sched.next_batch()
        asked: dict[int, int] = {}
        for r in reqs:
            asked[r.step] = asked.get(r.step, 0) + r.n
        for step, n in asked.items():
            assert n == need.get(step, 4)  # new steps need k
        sched.accept(reqs, sim.sample(reqs))


def test_rounds_and_sequential_decide_the_same_without_errors():
    task = Hanoi(9)
    model = SimModel(error=0.02, valid=0.9, seed=4)
    _, a, _, _ = drive(task, model, "rounds", k=3, window=100)
    _, b, _, _ = drive(task, model, "sequential", k=3)
    assert [d.correct for d in a] == [1] * 511

    def strip(rows):
        return [(d.step, d.answer, d.votes, d.samples, d.rounds, d.margin, d.correct)
                for d in rows]
    assert strip(a) == strip(b)
    # sequential needs many more rounds
    assert max(d.decided_round for d in b) > max(d.decided_round for d in a)


@pytest.mark.parametrize("mode", ["rounds", "sequential"])
def test_the_chain_follows_the_vote(mode):
    """k=1 with a weak model: wrong decisions happen; later inputs come from the voted chain."""
    task = Hanoi(7)
    sched = Schedule(task, VoteConfig(k=1, window=16), mode)
    sim = SimBackend(task, SimModel(error=0.05, valid=1.0, wrong=1, seed=11))
    inputs, keys, decided = {}, {}, []
    while not sched.finished:
        reqs = sched.next_batch()
        for st in sched.pending.values():
            inputs[(st.step, sched.epoch)] = st.x
        rows = sched.accept(reqs, sim.sample(reqs))
        keys.update({(a.step, a.epoch, a.id): a.key for a in rows.answers})
        decided += rows.decided
    errors = sum(1 for d in decided if d.correct == 0)
    assert errors > 0
    assert sum(d.divergent for d in decided) == (errors if mode == "rounds" else 0)
    x = task.initial()
    for d in decided:
        assert inputs[(d.step, d.epoch)] == x  # voted on the chain's input, not a stale draft
        key = keys[(d.step, d.epoch, d.answer)]
        assert d.correct == int(key == task.reference(x).key)
        x = task.next_input(x, task.answer_from_key(key))
    assert len(decided) == 127


def test_stuck_step_is_reported():
    task = Hanoi(6)
    with pytest.raises(StuckStep) as e:
        drive(task, SimModel(error=0.45, valid=0.5, spread=0, wrong=1, seed=1), k=8,
              max_samples=10)
    assert "undecided after" in str(e.value)


def test_temperatures():
    t = Temperatures(0.0, 0.1)
    assert [t.at(i) for i in range(3)] == [0.0, 0.1, 0.1]
    with pytest.raises(ValueError):
        Schedule(Hanoi(3), VoteConfig(k=3), "parallel")


def test_follow_draft_counts_divergences_but_keeps_the_draft():
    """Speed tests with random weights: a divergence is counted, the chain stays on the draft."""
    task = Hanoi(7)
    sched, decided, reqs, _ = drive(task, SimModel(error=0.3, valid=1.0, wrong=1, seed=3),
                                    k=1, window=128, follow="draft")
    errors = sum(1 for d in decided if d.correct == 0)
    assert errors > 10 and sum(d.divergent for d in decided) == errors
    assert sched.epoch == 0
    assert all(r.x == task.input_at(r.step) for r in reqs)  # every input is the reference's
    assert max(d.decided_round for d in decided) < 10  # a few full rounds, not one step at a time


@pytest.mark.parametrize("mode,k,error", [("rounds", 1, 0.3), ("rounds", 3, 0.2),
                                          ("sequential", 2, 0.2)])
def test_round_rows_come_in_the_order_the_ledger_hashes_them(mode, k, error):
    """write_round hashes a schedule's rows as they come (RoundRows.ordered): samples by
    (step, idx), answers by (step, epoch, id), decisions by step, in every round, across
    divergences and red flags; and every value is of the type SQLite returns for it."""
    task = Hanoi(7)
    sched = Schedule(task, VoteConfig(k=k, window=16, temperatures=Temperatures(0, 1)), mode)
    sim = SimBackend(task, SimModel(error=error, valid=0.8, seed=4))
    divergent = 0
    while not sched.finished:
        try:
            reqs = sched.next_batch()
        except StuckStep:  # a chain that left the rules can reach a state with no answer
            break
        rows = sched.accept(reqs, sim.sample(reqs))
        assert rows.ordered
        for got, key in ((rows.samples, lambda r: (r.step, r.idx)),
                         (rows.answers, lambda r: (r.step, r.epoch, r.id)),
                         (rows.decided, lambda r: r.step)):
            keys = [key(r) for r in got]
            assert keys == sorted(keys) and len(set(keys)) == len(keys)
        for r in rows.samples:
            assert type(r.temperature) is float
            assert all(type(v) is int for v in (r.step, r.idx, r.epoch, r.round, r.seed,
                                                   r.tokens_in, r.tokens_out,
                                                   r.tokens_reasoning))
        divergent += sum(d.divergent for d in rows.decided)
    assert mode == "sequential" or k > 1 or divergent > 0  # the hard case was met
