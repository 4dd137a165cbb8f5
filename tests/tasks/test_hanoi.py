import random
import re

import pytest

from maker_local.tasks.hanoi import (Hanoi, HanoiInput, answer_regex, answer_text, apply_move,
                                     direction, illegal_reason, initial_state, move_at,
                                     state_at, state_text, strategy_move, vote_key)


@pytest.mark.parametrize("n", range(1, 13))
def test_closed_form_equals_replay_every_step(n):
    """state_at/move_at (closed form) agree with replaying the paper's strategy, all steps."""
    task = Hanoi(n)
    x = task.initial()
    assert x.state == initial_state(n)
    for i in range(2**n - 1):
        assert x.state == state_at(n, i)
        assert x == task.input_at(i)
        ref = task.reference(x)
        assert ref is not None
        assert illegal_reason(x.state, ref.answer.move) is None
        assert ref.answer.move == move_at(n, i)
        x = task.next_input(x, ref.answer)
    assert x.state == ((), (), tuple(range(n, 0, -1)))  # solved: the tower is on peg 2
    assert state_at(n, 2**n - 1) == x.state


@pytest.mark.parametrize("n,cycle", [(4, [0, 1, 2, 0]), (3, [0, 2, 1, 0]), (20, [0, 1, 2, 0]),
                                     (19, [0, 2, 1, 0])])
def test_disk_one_moves_clockwise_by_parity(n, cycle):
    pegs = [move_at(n, i)[1] for i in range(0, 8, 2)]  # disk 1 moves on every even step
    assert all(move_at(n, i)[0] == 1 for i in range(0, 8, 2))
    assert pegs == cycle
    assert direction(n, 1) == (1 if n % 2 == 0 else 2)


def test_far_step_without_replay():
    task = Hanoi(20)
    x = task.input_at(700_000)
    assert sorted(d for peg in x.state for d in peg) == list(range(1, 21))
    assert all(list(peg) == sorted(peg, reverse=True) for peg in x.state)
    assert x.prev_move == move_at(20, 699_999)
    assert task.reference(x).answer.move == move_at(20, 700_000)


def test_legality_checks():
    s = ((3, 2), (), (1,))
    assert illegal_reason(s, (1, 2, 1)) is None
    assert "not on top" in illegal_reason(s, (3, 0, 1))
    assert "smaller" in illegal_reason(s, (2, 0, 2))
    assert "same" in illegal_reason(s, (1, 2, 2))
    assert apply_move(s, (2, 0, 1)) == ((3,), (2,), (1,))


def test_prompt_structure_and_constraint():
    task = Hanoi(3)
    x = task.input_at(1)
    system, user = task.render(x)
    assert system["role"] == "system" and user["role"] == "user"
    assert "[[3, 2, 1], [], []]" in system["content"]  # the worked 3-disk example
    assert "move = [disk id, from peg, to peg]" in system["content"]
    assert "0 -> 2 -> 1 -> 0" in user["content"]  # odd disks
    assert "Previous move: [1, 0, 2]" in user["content"]
    assert "Current state: [[3, 2], [], [1]]" in user["content"]
    assert "none" in task.render(task.initial())[1]["content"]
    ref = task.reference(x)
    assert re.fullmatch(task.constraint(x).regex, answer_text(ref.answer))
    assert not re.fullmatch(answer_regex(3), "move = [4, 0, 1]\nnext_state = [[4], [], []]")


def test_vote_key_and_round_trip():
    task = Hanoi(5)
    for i in (0, 1, 17, 30):
        ref = task.reference(task.input_at(i))
        assert task.answer_from_key(ref.key) == ref.answer
        assert ref.key == vote_key(ref.answer.move, ref.answer.next_state)
        assert " " not in ref.key
    assert state_text(((1,), (), ())) == "[[1], [], []]"


def test_wrong_answers_are_plausible_and_wrong():
    task = Hanoi(6)
    for i in range(0, 63, 7):
        x = task.input_at(i)
        ref = task.reference(x)
        wrong = task.wrong_answers(x, 4)
        assert len(wrong) == 4
        assert all(w != ref.answer for w in wrong)
        for w in wrong:  # each is well formed: the flag parser accepts its text
            got = task.parse(answer_text(w), x)
            assert got.key != ref.key


@pytest.mark.parametrize("bad", [0, 31, 64, -1])
def test_disk_range(bad):
    with pytest.raises(ValueError, match="--disks must be"):
        Hanoi(bad)


# --------------------------------------------------- Hanoi.reference against its definition

def _old_reference(x):
    """Hanoi.reference as first written: the strategy's move, checked, then applied."""
    move = strategy_move(x.disks, x.state, x.prev_move)
    if move is None or illegal_reason(x.state, move):
        return None
    nxt = apply_move(x.state, move)
    return vote_key(move, nxt), move, nxt


def _same_reference(task, x):
    try:
        want = _old_reference(x)
    except Exception as e:  # noqa: BLE001 - the same error, or none
        with pytest.raises(type(e)):
            task.reference(x)
        return
    got = task.reference(x)
    if want is None:
        assert got is None, x
    else:
        assert (got.key, got.answer.move, got.answer.next_state) == want, x
        assert type(got.key) is str


def _odd_states(n):
    """States no optimal run meets: disk 1 under others, on no top, twice, a disk 0, ..."""
    full = tuple(range(n, 0, -1))
    yield full, (), ()
    yield (), full, ()
    yield full[::-1], (), ()  # upside down: disk 1 at the bottom
    yield (2,), (1,), (0,)
    yield (1,), (0,), ()
    yield (1,), (), (0,)
    yield (1,), (-3,), (-3,)
    yield (3, 1), (2, 1), ()
    yield (1,), (1,), (1,)
    yield (2,), (3,), (4,)
    yield (), (), ()
    yield (2, 3), (1,), (5, 4)
    yield (4,), (1,), (4,)  # equal tops beside disk 1
    yield (5, 2), (3,), (1,)
    yield (1, 2), (3,), ()
    yield (1,), (0,)  # two pegs
    yield (2,), (1,)
    yield (1,), (0,), (), (5,)  # four pegs
    yield (2,), (1,), (3,), (5,)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8])
def test_reference_equals_its_definition_on_every_step_and_odd_states(n):
    task = Hanoi(n)
    prevs = [None, (1, 0, 1), (1, 2, 0), (2, 0, 1), (3, 1, 2)]
    for i in range(2**n - 1):
        x = task.input_at(i)
        _same_reference(task, x)
        states = [x.state] + [w.next_state for w in task.wrong_answers(x, 5)]
        for s in states:  # the chain after a wrong vote, with either rule due
            for prev in prevs:
                _same_reference(task, HanoiInput(n, s, prev))
    for s in _odd_states(n):
        for prev in prevs:
            for disks in (n, n + 1):
                _same_reference(task, HanoiInput(disks, s, prev))


def test_reference_equals_its_definition_on_random_20_disk_steps():
    task = Hanoi(20)
    rng = random.Random(5)
    for _ in range(2000):
        x = task.input_at(rng.randrange(2**20 - 1))
        _same_reference(task, x)
        pegs = list(x.state)
        rng.shuffle(pegs)
        _same_reference(task, HanoiInput(20, tuple(pegs), x.prev_move))
        _same_reference(task, HanoiInput(20, x.state, (1, 0, 2) if x.prev_move is None
                                         or x.prev_move[0] != 1 else (2, 0, 1)))
