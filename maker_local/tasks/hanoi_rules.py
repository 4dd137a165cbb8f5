"""Towers of Hanoi: states, moves, the rules and the optimal solution in closed form (pure).

Pegs 0, 1, 2; each peg is a tuple from bottom to top; disks 1 (smallest) .. n. Step i (0-based)
is the (i+1)-th move of the optimal solution that moves the tower from peg 0 to peg 2. The
prompt formats (hanoi.py: the paper's; hanoi_compact.py: the bundled model's) build on this
module and on nothing else of each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

State = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
Move = tuple[int, int, int]

MAX_DISKS = 30  # 2^30 steps; seeds pack the step into 32 bits (see engine.seeds)


@dataclass(frozen=True, slots=True)
class HanoiInput:
    """What one agent sees: the disk count, the state, and the previous move (None at step 0)."""

    disks: int
    state: State
    prev_move: Move | None


@dataclass(frozen=True, slots=True)
class HanoiAnswer:
    move: Move
    next_state: State


# ---------------------------------------------------------------------------- rules, closed form

def direction(n: int, disk: int) -> int:
    """Peg step (+1 or +2 mod 3) that `disk` always moves by in the optimal n-disk solution."""
    return 1 if (n - disk) % 2 == 1 else 2


def initial_state(n: int) -> State:
    return (tuple(range(n, 0, -1)), (), ())


def state_at(n: int, i: int) -> State:
    """State after i moves of the optimal solution, in O(n) without replay."""
    if not 0 <= i < 2**n:
        raise ValueError(f"step {i} is outside 0..{2**n - 1} for {n} disks")
    pegs: list[list[int]] = [[], [], []]
    for d in range(n, 0, -1):
        moves = (i + (1 << (d - 1))) >> d  # times disk d has moved after i moves
        pegs[(moves * direction(n, d)) % 3].append(d)
    return (tuple(pegs[0]), tuple(pegs[1]), tuple(pegs[2]))


def move_at(n: int, i: int) -> Move:
    """The (i+1)-th move of the optimal solution (0-based step i), closed form."""
    if not 0 <= i < 2**n - 1:
        raise ValueError(f"step {i} is outside 0..{2**n - 2} for {n} disks")
    j = i + 1
    d = (j & -j).bit_length()  # disk = 1 + trailing zeros of i+1
    before = (i + (1 << (d - 1))) >> d
    src = (before * direction(n, d)) % 3
    return (d, src, (src + direction(n, d)) % 3)


def apply_move(state: State, move: Move) -> State:
    """The state after `move`, without checking legality."""
    d, a, b = move
    pegs = list(state)
    pegs[a] = state[a][:-1]
    pegs[b] = state[b] + (d,)
    return (pegs[0], pegs[1], pegs[2])


def illegal_reason(state: State, move: Move) -> str | None:
    """Why `move` is illegal in `state`, or None if it is legal."""
    d, a, b = move
    if a == b:
        return f"move {list(move)} has the same source and target peg"
    if not state[a] or state[a][-1] != d:
        return f"disk {d} is not on top of peg {a}"
    if state[b] and state[b][-1] < d:
        return f"disk {d} cannot go onto smaller disk {state[b][-1]}"
    return None


def strategy_move(n: int, state: State, prev_move: Move | None) -> Move | None:
    """The paper's strategy from any state; None when no move is possible."""
    if prev_move is None or prev_move[0] != 1:
        src = next((p for p in range(3) if state[p] and state[p][-1] == 1), None)
        if src is None:
            return None
        return (1, src, (src + direction(n, 1)) % 3)
    others = [p for p in range(3) if not (state[p] and state[p][-1] == 1)]
    a, b = others
    ta = state[a][-1] if state[a] else None
    tb = state[b][-1] if state[b] else None
    if ta is None and tb is None:
        return None
    if tb is None or (ta is not None and ta < tb):
        return (ta, a, b)
    return (tb, b, a)


@lru_cache(maxsize=1 << 16)
def _peg_key(peg: tuple[int, ...]) -> str:
    return ",".join(map(str, peg))


def vote_key(move: Move, next_state: State) -> str:
    """Canonical vote key of the pair (move, next_state): '1,0,2|[[3,2],[],[1]]'."""
    s = next_state
    return (f"{move[0]},{move[1]},{move[2]}|"
            f"[[{_peg_key(s[0])}],[{_peg_key(s[1])}],[{_peg_key(s[2])}]]")
