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


# The move keys' first part ('2,0,1|[['), by (from, to) then disk: Hanoi.reference builds a
# vote key once per step of a run (and the sim once more), and formatting three ints is most of
# vote_key's cost. Disks 1..MAX_DISKS; anything else is formatted (see _key_head).
_KEY_HEAD = [[[f"{d},{a},{b}|[[" for d in range(MAX_DISKS + 1)] for b in range(3)]
             for a in range(3)]
# the moves of disk 1 by (from, to): the same tuple objects every step
_DISK1 = [[(1, a, b) for b in range(3)] for a in range(3)]


def _key_head(d: int, a: int, b: int) -> str:
    if type(d) is int and 1 <= d <= MAX_DISKS:
        return _KEY_HEAD[a][b][d]
    return f"{d},{a},{b}|[["


def reference_step(n: int, state: State, prev_move: Move | None
                   ) -> tuple[str, Move, State] | None:
    """The strategy's answer for (state, prev_move) as (vote key, move, next state), or None
    when it has none: exactly what this composition gives, in one pass:

        move = strategy_move(n, state, prev_move)
        if move is None or illegal_reason(state, move):
            return None
        nxt = apply_move(state, move)
        return vote_key(move, nxt), move, nxt

    Which of illegal_reason's checks can fail (states hold integer disks, as every state a run
    meets does: the initial one, the flag parser's and the strategy's):
    - disk 1 due: the move is (1, src, src + 1 or 2 mod 3) with disk 1 on top of src, so its
      pegs differ and its disk is on top; only "onto a smaller disk" is left, which needs a top
      disk < 1 on the target (no disk of a real tower, but a state given by hand may hold one):
      checked below.
    - the other rule: the move takes the smaller top ta of the two pegs a, b that do not have
      disk 1 on top (or the only top there is) onto the other: a != b, the disk is the top of
      its peg, and the target is empty or has the larger top (ta < tb, or ta == tb, which is
      not "smaller"): always legal, so nothing is checked.
    A state with other than three pegs, or one where the other rule is due and disk 1 is on no
    top or on more than one, takes the slow composition above, so it behaves as before (its
    errors included).
    """
    if len(state) != 3:
        return _reference_step_slow(n, state, prev_move)
    s0, s1, s2 = state
    if prev_move is None or prev_move[0] != 1:  # rule 1: disk 1 moves one peg clockwise
        if s0 and s0[-1] == 1:
            src = 0
        elif s1 and s1[-1] == 1:
            src = 1
        elif s2 and s2[-1] == 1:
            src = 2
        else:
            return None  # strategy_move: no move
        dst = (src + (1 if n % 2 == 0 else 2)) % 3  # direction(n, 1)
        to = state[dst]
        if to and to[-1] < 1:  # illegal_reason: "cannot go onto smaller disk"
            return None
        move = _DISK1[src][dst]
        d, a, b = 1, src, dst
    else:  # rule 2: the only legal move that does not involve disk 1
        on0 = bool(s0) and s0[-1] == 1
        on1 = bool(s1) and s1[-1] == 1
        on2 = bool(s2) and s2[-1] == 1
        if on0 + on1 + on2 != 1:
            return _reference_step_slow(n, state, prev_move)
        a, b = (1, 2) if on0 else (0, 2) if on1 else (0, 1)
        pa, pb = state[a], state[b]
        if not pa:
            if not pb:
                return None  # strategy_move: no move
            d, a, b = pb[-1], b, a
        elif pb and not pa[-1] < pb[-1]:
            d, a, b = pb[-1], b, a
        else:
            d = pa[-1]
        move = (d, a, b)
    pegs = [s0, s1, s2]  # apply_move
    pegs[a] = state[a][:-1]
    pegs[b] = state[b] + (d,)
    p0, p1, p2 = pegs
    key = f"{_key_head(d, a, b)}{_peg_key(p0)}],[{_peg_key(p1)}],[{_peg_key(p2)}]]"
    return key, move, (p0, p1, p2)


def _reference_step_slow(n: int, state: State, prev_move: Move | None
                         ) -> tuple[str, Move, State] | None:
    move = strategy_move(n, state, prev_move)
    if move is None or illegal_reason(state, move):
        return None
    nxt = apply_move(state, move)
    return vote_key(move, nxt), move, nxt
