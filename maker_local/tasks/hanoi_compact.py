"""The compact Hanoi prompt/answer format of the project's own step model (models/hanoi-step).

Per-disk encoding with letter labels: disk 1 is `a`, disk 2 is `b`, ... (at most 26 disks), and
a state is written as each disk's label followed by the peg (0, 1, 2) it sits on, LARGEST disk
first. The order on a peg (bottom to top) follows from the sizes, so this is lossless. The next
state is then a copy of the input state with one digit changed, and every copy is by content
(find label `c` in the prompt, copy the digit after it): a very easy pattern for a small
transformer, with no counting of positions. Largest first puts the disks that decide a move
next to the answer: the disk to move (when it is not disk 1) is the smallest disk off disk 1's
peg, i.e. the label just before the final run of disk 1's peg digit, which a model finds by
looking back from the end. (Smallest first, the first version of this format, made it the end
of a leading run of up to 19 equal digits, and a small model confused runs of 14 and 15.)

    prompt  (user message):  n=4;p=a20;s=d0c1b2a0      disk count; previous move; state
    answer  (model output):  m=b21;s=d0c1b1a0          move (disk b=2, peg 2 -> peg 1); next state

A move is the disk's label then the from and to pegs; the previous move of step 0 is `-`.
Pure Python: no torch, no tokenizer.
"""
from __future__ import annotations

import re
from itertools import compress

from .base import Constraint, Flag, Parsed
from .hanoi_rules import HanoiAnswer, HanoiInput, Move, State, _key_head, _peg_key

MAX_COMPACT_DISKS = 26
LABELS = "abcdefghijklmnopqrstuvwxyz"


def _check_n(n: int) -> None:
    if not isinstance(n, int) or not 1 <= n <= MAX_COMPACT_DISKS:
        raise ValueError(f"the compact format holds 1..{MAX_COMPACT_DISKS} disks (got {n})")


def _label(disk: int) -> str:
    return LABELS[disk - 1]


# per disk count n: the labels n..1 ('dcba' for 4), and the text 'd0c0b0a0' whose digits
# state_compact overwrites
_DESC = [LABELS[:k][::-1] for k in range(MAX_COMPACT_DISKS + 1)]
_TEMPLATE = [("0".join(_DESC[k]) + "0").encode() if k else b""
             for k in range(MAX_COMPACT_DISKS + 1)]


def state_compact(state: State, n: int) -> str:
    """'d0c0b1a2': for each disk n..1 (largest first) its label and its peg."""
    _check_n(n)
    where = ["0"] * (n + 1)  # each disk's peg, as text
    for peg, disks in enumerate(state):
        c = str(peg)
        for d in disks:
            where[d] = c
    digits = "".join(where[n:0:-1])
    if len(digits) != n:  # a peg numbered 10 or more: two characters
        return "".join(map(str.__add__, _DESC[n], where[n:0:-1]))
    out = bytearray(_TEMPLATE[n])
    out[1::2] = digits.encode()  # the pegs after the labels: 'd0c1b2a0'
    return out.decode()


def move_compact(move: Move) -> str:
    d, a, b = move
    return f"{LABELS[d - 1]}{a}{b}"  # _label(d)


def render_compact(x: HanoiInput) -> str:
    """The prompt text (the user message content): 'n=4;p=a20;s=d0c1b2a0'."""
    prev = "-" if x.prev_move is None else move_compact(x.prev_move)
    return f"n={x.disks};p={prev};s={state_compact(x.state, x.disks)}"


def answer_compact(answer: HanoiAnswer) -> str:
    """The target output text: 'm=b21;s=d0c1b1a0'."""
    n = sum(map(len, answer.next_state))
    return f"m={move_compact(answer.move)};s={state_compact(answer.next_state, n)}"


_ANSWER_RE = re.compile(r"m=([a-z])([0-2])([0-2]);s=((?:[a-z][0-2])+)")


_PEG_DIGIT = {"0": 0, "1": 1, "2": 2}
# selectors for itertools.compress: byte 1 where a state's digit names peg p, else 0
_ON_PEG = [bytes.maketrans(b"012", bytes(int(q == p) for q in range(3))) for p in range(3)]
_DISKS_DESC = [range(k, 0, -1) for k in range(MAX_COMPACT_DISKS + 1)]


def parse_compact(text: str, n: int) -> Parsed | Flag:
    """Parse a compact answer; `Flag('parse', why)` unless well formed with each disk once."""
    _check_n(n)
    m = _ANSWER_RE.fullmatch(text.strip())
    if m is None:
        return Flag("parse", "not in the form m=<disk><from><to>;s=<disk><peg>...")
    label, a, b, body = m.groups()
    disk = ord(label) - 96  # LABELS.index(label) + 1: the regex admits a..z only
    if disk > n:
        return Flag("parse", f"move names disk {disk} of {n}")
    a, b = _PEG_DIGIT[a], _PEG_DIGIT[b]
    if body[0::2] != _DESC[n]:
        return Flag("parse", f"next state does not list disks {n}..1 once each, in order")
    # largest first: each peg bottom to top
    digits, disks = body[1::2].encode(), _DISKS_DESC[n]
    state: State = (tuple(compress(disks, digits.translate(_ON_PEG[0]))),
                    tuple(compress(disks, digits.translate(_ON_PEG[1]))),
                    tuple(compress(disks, digits.translate(_ON_PEG[2]))))
    key = (f"{_key_head(disk, a, b)}{_peg_key(state[0])}],[{_peg_key(state[1])}],"
           f"[{_peg_key(state[2])}]]")  # vote_key(move, state)
    return Parsed(key, HanoiAnswer((disk, a, b), state))


def compact_regex(n: int) -> str:
    """Regex that exactly the well-formed n-disk answers fully match (disks bounded 1..n)."""
    _check_n(n)
    disk = f"[a-{_label(n)}]"
    return f"m={disk}[0-2][0-2];s=" + "".join(f"{_label(d)}[0-2]" for d in range(n, 0, -1))


class CompactFormat:
    """The compact prompt/answer format for n disks (what hanoi.Hanoi uses for style
    "compact"). The flag parser only: the format has no looser spelling to repair."""

    name = "compact"
    sim_prose = ""

    def __init__(self, n: int):
        self.n = n
        self.constraint = Constraint(regex=compact_regex(n))

    def render(self, x: HanoiInput) -> list[dict[str, str]]:
        return [{"role": "user", "content": render_compact(x)}]

    def parse(self, text: str, repair: bool = False) -> Parsed | Flag:
        return parse_compact(text, self.n)

    def text(self, answer: HanoiAnswer) -> str:
        return answer_compact(answer)


__all__ = ["CompactFormat", "render_compact", "answer_compact", "parse_compact", "compact_regex",
           "state_compact", "move_compact", "MAX_COMPACT_DISKS"]
