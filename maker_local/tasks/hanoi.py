"""Towers of Hanoi as an MDAP task, in the paper's form.

Pegs 0, 1, 2; each peg is a tuple from bottom to top; disks 1 (smallest) .. n. Step i (0-based)
is the (i+1)-th move of the optimal solution that moves the tower from peg 0 to peg 2. The
agent's strategy (the paper's): if the previous move did not move disk 1, move disk 1 one peg
"clockwise" (0->1->2->0 for an even number of disks, 0->2->1->0 for an odd number); otherwise
make the only legal move that does not involve disk 1.

Everything here is pure and needs no replay: `state_at(n, i)` is closed form, so step 700,000
of a 20-disk run is built directly.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from .base import Constraint, Flag, Parsed, TaskBase
from .hanoi_compact import CompactFormat
from .hanoi_rules import (MAX_DISKS, HanoiAnswer, HanoiInput, Move, State, _peg_key,  # noqa: F401
                          apply_move, direction, illegal_reason, initial_state, move_at,
                          reference_step, state_at, strategy_move, vote_key)

# ---------------------------------------------------------------------------------- text forms

@lru_cache(maxsize=1 << 16)
def _peg_text(peg: tuple[int, ...]) -> str:
    return ", ".join(map(str, peg))


# A peg's contents recur across millions of states (the big disks rarely move), so the text of
# each peg is cached: state_text and vote_key run once or twice per step of a run.
def state_text(state: State) -> str:
    """The paper's list notation: [[3, 2], [], [1]]."""
    return f"[[{_peg_text(state[0])}], [{_peg_text(state[1])}], [{_peg_text(state[2])}]]"


def move_text(move: Move) -> str:
    return f"[{move[0]}, {move[1]}, {move[2]}]"


def answer_text(answer: HanoiAnswer) -> str:
    """The exact output format the prompt asks for."""
    m, s = answer.move, answer.next_state  # move_text and state_text, inlined (once a step)
    return (f"move = [{m[0]}, {m[1]}, {m[2]}]\n"
            f"next_state = [[{_peg_text(s[0])}], [{_peg_text(s[1])}], [{_peg_text(s[2])}]]")


SYSTEM_PROMPT = """You are a helpful assistant. Solve this puzzle for me.
There are three pegs and {n} disks of different sizes stacked on the first peg. The disks are
numbered from 1 (smallest) to {n} (largest). Disk moves in this puzzle follow these rules:
1. Only one disk can be moved at a time.
2. Each move takes the upper disk from one stack and places it on top of another stack.
3. A larger disk may not be placed on top of a smaller disk.
The goal is to move the entire stack to the third peg.

Example: with 3 disks numbered 1 (smallest), 2 and 3 (largest), the initial state is
[[3, 2, 1], [], []], and a solution is:
moves = [[1, 0, 2], [2, 0, 1], [1, 2, 1], [3, 0, 2], [1, 1, 0], [2, 1, 2], [1, 0, 2]]
This means: move disk 1 from peg 0 to peg 2, then disk 2 from peg 0 to peg 1, and so on.

Requirements:
- Pegs are numbered 0, 1, 2 and each peg is written as a list from bottom to top.
- A move is written [disk id, from peg, to peg].
- Give the single next move and the state that results from it, in exactly this format:
move = [disk id, from peg, to peg]
next_state = [[...], [...], [...]]"""

USER_PROMPT = """Rules:
- Only one disk can be moved at a time.
- Only the top disk of a stack can be moved.
- A larger disk may not be placed on top of a smaller disk.
For all moves, follow the standard procedure:
1. If the previous move did not move disk 1, move disk 1 one peg clockwise ({cycle}).
2. If the previous move did move disk 1, make the only legal move that does not involve disk 1.
Use these steps to find the next move given the previous move and the current state.

Previous move: {prev}
Current state: {state}

Based on the previous move and the current state, find the single next move that follows the
procedure and the resulting next state."""


# --------------------------------------------------------------------------------------- parsers

# The flag parser. The paper's (its appendix) takes the last `move = [...]` and the last
# `next_state = [[...], [...], [...]]` anywhere, each on its own, and reads them with
# ast.literal_eval; so "a wrong answer, then `No, correction: move = [...]` and its state" can
# come out as one answer's move with the other's state. Here an answer is a BLOCK: the move
# key, its list, then nothing but non-word characters (whitespace, punctuation, markdown: one
# line or two, a tab or a newline anywhere), then the next_state key and its lists; the last
# complete block is the answer, its move and its state together. Keys are whole words in any
# letter case, so "remove = [...]" and "my_next_state = ..." are no keys; a move with no
# next_state right after it ("the previous move = [1, 0, 2]" in a thought or an afterthought)
# is no block and is never read; a state before its move is no block either. Numbers are plain
# ASCII decimals without sign or leading zeros (literal_eval also rejects "01" and non-ASCII
# digits, but accepts True, -1, 1_0 and 00, which are flagged here). tests/tasks/test_paper_fuzz.py
# holds the rule written a second way (a character scanner) and fuzzes the two against each
# other.
_NUM = r"(?:0|[1-9][0-9]*)"
_LIST = rf"\[\s*((?:{_NUM}\s*(?:,\s*{_NUM}\s*)*)?)\]"
_MOVE = rf"\bmove\s*=\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]"
_MOVE_RE = re.compile("(?i)" + _MOVE)  # only to say which part a flagged text lacks
_BLOCK_RE = re.compile(
    rf"(?i){_MOVE}\W*next_state\s*=\s*\[\s*{_LIST}\s*,\s*{_LIST}\s*,\s*{_LIST}\s*\]")
# The repairing parser (calibration only) accepts other spellings, brackets and separators
# ('Move: (1, 0, 2)', '{"move": [1, 0, 2], "next_state": [[3], [], [1, 2]]}', 'next-state =
# [[3 2] [] [1]]'), but reads blocks as the flag parser does: the move, then only non-word
# characters (quotes, colons, commas, semicolons, whitespace), then its next state; the last
# such block is the answer, so a corrected move is never paired with an older answer's state.
_REPAIR_MOVE = (r"move[\"']?\s*[:=]?\s*[\[(]\s*(-?\d+)\s*[,;\s]\s*(-?\d+)\s*[,;\s]\s*(-?\d+)"
                r"\s*[\])]")
_REPAIR_STATE = (r"next[ _-]?state[\"']?\s*[:=]?\s*[\[(]\s*([\[(][^\[\]()]*[\])]\s*,?\s*"
                 r"[\[(][^\[\]()]*[\])]\s*,?\s*[\[(][^\[\]()]*[\])])\s*[\])]")
_REPAIR_MOVE_RE = re.compile(_REPAIR_MOVE)  # only to say which part a flagged text lacks
_REPAIR_BLOCK_RE = re.compile(_REPAIR_MOVE + r"\W*" + _REPAIR_STATE)  # on lowercased text
_FULL = {n: set(range(1, n + 1)) for n in range(1, MAX_DISKS + 1)}
_OUTSIDE = 1  # bit 0 of a peg's mask: a number that is no disk of any tower (< 1 or too big)


@lru_cache(maxsize=1 << 16)
def _read_peg(body: str) -> tuple[tuple[int, ...], int, str] | None:
    """One peg of a next_state as the flag parser reads it ('20, 15, 8'): its disks, their set
    as a bit mask (bit d for disk d) and its vote-key text; None when it is not a list of
    integers. Cached like `_peg_text`: a peg's text recurs across many states, so most steps
    of a run parse no number at all."""
    if not body.strip():
        return (), 0, ""
    try:  # the regex admits only digits, '-', commas and spaces in each peg
        peg = tuple(map(int, body.split(",")))
    except ValueError:
        return None
    mask = 0
    for d in peg:
        mask |= 1 << d if 1 <= d <= MAX_DISKS else _OUTSIDE
    return peg, mask, _peg_key(peg)


def _last(regex: re.Pattern[str], text: str, anchor: str) -> re.Match[str] | None:
    """The last match of `regex`; tries the last occurrence of `anchor` first (fast path)."""
    m = regex.match(text, max(0, text.rfind(anchor)))
    if m is not None and regex.search(text, m.end()) is None:
        return m
    for m in regex.finditer(text):
        pass
    return m


def _repair_pegs(body: str) -> list[list[int]] | None:
    pegs = re.findall(r"[\[(]([^\[\]()]*)[\])]", body)
    try:
        return [[int(t) for t in re.split(r"[,;\s]+", p.strip()) if t] for p in pegs]
    except ValueError:
        return None


def parse_answer(text: str, n: int, repair: bool = False) -> Parsed | Flag:
    """The paper's flag parser (or, with repair=True, its repairing parser).

    Reads the last block `move = [a, b, c]` then `next_state = [[...], [...], [...]]` (keys
    whole words in any letter case, only non-word characters between the two parts): its move
    and its state together. Plain decimal integers (ASCII digits, no sign, no leading zeros),
    disk ids in 1..n, pegs in 0..2, every disk exactly once; anything else is a flag. See
    _BLOCK_RE for where this differs from the paper's parser, and why. The repairing parser
    reads the last block too, in looser spellings (_REPAIR_MOVE, _REPAIR_STATE).
    """
    if not repair:
        got = _parse_canonical(text, n)  # the answer as answer_text writes it, at the end
        if got is not None:
            return got
        return _parse_block(text, n)
    low = text.lower()
    m = _last(_REPAIR_BLOCK_RE, low, "move")
    move = _block_move(m, _REPAIR_MOVE_RE, low, n)
    if isinstance(move, Flag):
        return move
    pegs = _repair_pegs(m.group(4))
    if pegs is None or len(pegs) != 3:
        return Flag("parse", "next_state is not three lists of integers")
    flat = pegs[0] + pegs[1] + pegs[2]
    if len(flat) != n or set(flat) != _FULL[n]:
        return Flag("parse", f"next_state does not hold each disk 1..{n} exactly once")
    state: State = (tuple(pegs[0]), tuple(pegs[1]), tuple(pegs[2]))
    return Parsed(vote_key(move, state), HanoiAnswer(move, state))


def _parse_block(text: str, n: int) -> Parsed | Flag:
    """The flag parser's general path: the last complete block of `text` (see _BLOCK_RE)."""
    m = _last(_BLOCK_RE, text, "move")
    move = _block_move(m, _MOVE_RE, text, n)
    if isinstance(move, Flag):
        return move
    return _checked(move, m.group(4, 5, 6), n)


def _block_move(m: re.Match[str] | None, move_re: re.Pattern[str], text: str,
                n: int) -> tuple[int, int, int] | Flag:
    """The move of the last block `m` (groups 1-3), or the flag that says what is missing
    (`move_re`: a move alone, to tell "no move" from "no state after the move") or out of
    range; the flag parser's and the repairing parser's alike."""
    if m is None:
        if move_re.search(text) is None:
            return Flag("parse", "no move = [disk, from, to]")
        return Flag("parse", "no next_state = [[...], [...], [...]] right after a move")
    move = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if not (1 <= move[0] <= n and 0 <= move[1] <= 2 and 0 <= move[2] <= 2):
        return Flag("parse", f"move {list(move)} out of range for {n} disks")
    return move


# The flag parser's fast path: a text that ENDS with the answer exactly as answer_text writes it
# (after anything at all, e.g. the sim's prose or a model's reasoning; then only whitespace):
#
#     move = [d, a, b]                    a line of its own: at the text's start or after "\n"
#     next_state = [[B0], [B1], [B2]]     each Bi '' or plain decimals joined by ", "
#
# For such a text the general path's last block is these very lines, whatever comes before
# them. A block begins at the move line (a `move` key with a word boundary before it, as the
# line starts the text or follows "\n"), and it is complete: "\n" is a non-word character
# and the next_state line follows. No block begins after it (the rest holds no other "move":
# "next_state", brackets, digits, commas, "=" and whitespace), and none that begins before it
# reaches into it (a block runs from its key through "=", brackets, digits, commas and
# non-word characters to "next_state" and its lists: it holds the word "move" only as its own
# key). So the general path's groups are exactly d, a, b and B0, B1, B2; the move is one of
# the in-range moves listed below, so it goes on to _checked with these pegs, and the fast
# path gives _checked's verdict on them (the same disks and key, the same exactly-once test:
# see _canon_peg). Any other text (another spelling, a cut-off answer, a disk or peg out of
# range, text after the answer) gives None, and parse_answer takes the general path.
# tests/tasks/test_parsers.py checks the two paths agree.
_MOVE_TEXTS: dict[int, dict[str, tuple[Move, str]]] = {}
_CANON_PEG_RE = re.compile(rf"(?:{_NUM}(?:, {_NUM})*)?")
_CANON_PEGS: dict[str, tuple[tuple[int, ...], int, str]] = {}
_CANON_PEGS_MAX = 1 << 16
_SEP = "]\nnext_state = [["  # 17 characters


def _move_texts(n: int) -> dict[str, tuple[Move, str]] | None:
    """'d, a, b' -> (move, its vote key's head 'd,a,b|') for every move the flag parser takes
    as in range for n disks (disk 1..n, pegs 0..2); None for an n the fast path leaves alone."""
    table = _MOVE_TEXTS.get(n)
    if table is None:
        if type(n) is not int or not 1 <= n <= MAX_DISKS:
            return None
        table = _MOVE_TEXTS[n] = {f"{d}, {a}, {b}": ((d, a, b), f"{d},{a},{b}|")
                                  for d in range(1, n + 1) for a in range(3) for b in range(3)}
    return table


def _canon_peg(body: str) -> tuple[tuple[int, ...], int, str] | None:
    """A peg written canonically ('20, 15, 8' or ''): _read_peg's disks, mask and key, except
    that the mask is -1 when the peg holds a number twice or one that is no disk (so that
    three masks m0, m1, m2 hold each disk 1..n exactly once iff m0 | m1 | m2 and m0 + m1 + m2
    both equal the mask of 1..n); None for any other text (the fast path then gives way)."""
    got = _CANON_PEGS.get(body)
    if got is None:
        if _CANON_PEG_RE.fullmatch(body) is None:
            return None
        # a canonical peg is always a list of integers (and _read_peg's own cache is left alone)
        peg, mask, key = _read_peg.__wrapped__(body)
        if mask & _OUTSIDE or mask.bit_count() != len(peg):
            mask = -1
        if len(_CANON_PEGS) >= _CANON_PEGS_MAX:
            _CANON_PEGS.clear()
        got = _CANON_PEGS[body] = (peg, mask, key)
    return got


def _parse_canonical(text: str, n: int) -> Parsed | Flag | None:
    """parse_answer's verdict on a text that ends with the canonical answer (see above);
    None for any other text."""
    p = text.rfind("\nmove = [") + 1  # the last line that starts with the canonical key
    if p == 0 and not text.startswith("move = ["):
        return None
    q = text.find(_SEP, p + 8)
    table = _MOVE_TEXTS.get(n) or _move_texts(n)
    if q < 0 or table is None:
        return None
    mv = table.get(text[p + 8:q])
    if mv is None:
        return None
    if text.endswith("]]"):
        bodies = text[q + 17:-2].split("], [")
    else:  # trailing whitespace
        tail = text[q + 17:].rstrip()
        if not tail.endswith("]]"):
            return None
        bodies = tail[:-2].split("], [")
    if len(bodies) != 3:
        return None
    b0, b1, b2 = bodies
    get = _CANON_PEGS.get
    a = get(b0) or _canon_peg(b0)
    b = get(b1) or _canon_peg(b1)
    c = get(b2) or _canon_peg(b2)
    if a is None or b is None or c is None:
        return None
    full = (2 << n) - 2
    if a[1] | b[1] | c[1] != full or a[1] + b[1] + c[1] != full:
        return Flag("parse", f"next_state does not hold each disk 1..{n} exactly once")
    move, head = mv
    return Parsed(f"{head}[[{a[2]}],[{b[2]}],[{c[2]}]]", HanoiAnswer(move, (a[0], b[0], c[0])))


def _checked(move: Move, bodies: tuple[str, str, str], n: int) -> Parsed | Flag:
    """The flag parser's verdict on a move and the texts of its three pegs: every disk 1..n
    exactly once (n numbers whose masks are disjoint and cover 1..n), else a flag."""
    a, b, c = (_read_peg(t) for t in bodies)
    if a is None or b is None or c is None:
        return Flag("parse", "next_state is not three lists of integers")
    if len(a[0]) + len(b[0]) + len(c[0]) != n or a[1] | b[1] | c[1] != (2 << n) - 2:
        return Flag("parse", f"next_state does not hold each disk 1..{n} exactly once")
    key = f"{move[0]},{move[1]},{move[2]}|[[{a[2]}],[{b[2]}],[{c[2]}]]"
    return Parsed(key, HanoiAnswer(move, (a[0], b[0], c[0])))


def answer_regex(n: int) -> str:
    """Regex of the exact output format, with disk ids bounded to 1..n."""
    disk = "(?:" + "|".join(str(d) for d in range(n, 0, -1)) + ")"
    peg_list = rf"\[(?:{disk}(?:, {disk})*)?\]"
    return (rf"move = \[{disk}, [0-2], [0-2]\]\n"
            rf"next_state = \[{peg_list}, {peg_list}, {peg_list}\]")


def answer_schema(n: int) -> dict[str, Any]:
    """JSON schema of the answer; bounds are enums because Outlines ignores min/max."""
    disk = {"type": "integer", "enum": list(range(1, n + 1))}
    peg = {"type": "integer", "enum": [0, 1, 2]}
    return {
        "type": "object",
        "properties": {
            "move": {"type": "array", "prefixItems": [disk, peg, peg], "items": False,
                     "minItems": 3, "maxItems": 3},
            "next_state": {"type": "array", "items": {"type": "array", "items": disk},
                           "minItems": 3, "maxItems": 3},
        },
        "required": ["move", "next_state"],
        "additionalProperties": False,
    }


# ------------------------------------------------------------------------------------ the task

class PaperFormat:
    """The paper's prompts, output format, flag parser (and repairing parser) for n disks."""

    name = "paper"
    # the sim's words before an answer (a model that explains itself)
    sim_prose = "The previous move decides which rule applies; following the procedure:\n"

    def __init__(self, n: int):
        self.n = n
        self.system = SYSTEM_PROMPT.format(n=n)
        self.cycle = "0 -> 1 -> 2 -> 0" if n % 2 == 0 else "0 -> 2 -> 1 -> 0"
        self.constraint = Constraint(regex=answer_regex(n), json_schema=answer_schema(n))

    def render(self, x: HanoiInput) -> list[dict[str, str]]:
        prev = "none (this is the first move)" if x.prev_move is None else move_text(x.prev_move)
        user = USER_PROMPT.format(cycle=self.cycle, prev=prev, state=state_text(x.state))
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def parse(self, text: str, repair: bool = False) -> Parsed | Flag:
        return parse_answer(text, self.n, repair)

    def text(self, answer: HanoiAnswer) -> str:
        return answer_text(answer)


FORMATS = {"paper": PaperFormat, "compact": CompactFormat}
STYLES = tuple(FORMATS)


def parse_disks(spec: str) -> list[int]:
    """'3-20', '4,10,20' or '3-6,10' -> sorted disk counts; ValueError says what is wrong."""
    out: set[int] = set()
    for part in filter(None, (p.strip() for p in str(spec).split(","))):
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ValueError(f"--disks takes counts like 3-20 or 4,10,20 (got {spec!r})") from None
        if not 1 <= a <= b <= MAX_DISKS:
            raise ValueError(f"--disks must lie in 1..{MAX_DISKS} (got {part!r})")
        out.update(range(a, b + 1))
    if not out:
        raise ValueError("--disks is empty")
    return sorted(out)


class Hanoi(TaskBase):
    """Towers of Hanoi with n disks: 2^n - 1 steps, each one move.

    `style` is the prompt/answer format: "paper" (the paper's prompts and output format) or
    "compact" (the bundled step model's own format, see hanoi_compact.py). Vote keys are the
    same in both, so votes from different styles can be compared.
    """

    name = "hanoi"
    styles = STYLES
    size_label = "disks"
    size_flag = "--disks"
    default_profile = "hanoi-step"

    # -------------------------------------------------------------- the plug-in's class side
    @classmethod
    def add_cli_args(cls, p: Any, purpose: str) -> None:
        if purpose == "calibrate":
            p.add_argument("--disks", default="3-20",
                           help="Hanoi: disk counts to sample, e.g. 3-20 or 4,10,20")
            return
        default = 20 if purpose == "bench" else 10
        p.add_argument("--disks", type=int, default=default,
                       help=f"Hanoi: disks, 2^n - 1 steps (default {default})")

    @classmethod
    def from_args(cls, args: Any, style: str) -> "Hanoi":
        return cls(args.disks, style=style)

    @classmethod
    def grid(cls, args: Any, style: str) -> list["Hanoi"]:
        return [cls(d, style=style) for d in parse_disks(args.disks)]

    @property
    def size(self) -> int:
        return self.disks

    def label(self) -> str:
        return f"{self.disks} disks"

    def params(self) -> dict[str, Any]:
        return {"disks": self.disks, "style": self.style}

    def class_name(self, row: dict[str, Any]) -> str:
        """A class of steps in the model card's class table (card_classes.json)."""
        what = {"move": "moving disk {d}", "after": "the step after a move of disk {d}",
                "before": "the step before a move of disk {d}"}
        return f"{self.disks} disks, " + what[row.get("kind", "move")].format(d=row["disk"])

    def malformed(self, text: str, u: float) -> str:
        """The sim's format failures: cut off, a digit too many (a disk or peg that cannot
        be: never a valid answer in Hanoi), or prose."""
        if u < 0.4:
            return text[: len(text) * 2 // 3]
        if u < 0.7:
            i = max(i for i, c in enumerate(text) if c.isdigit())
            return text[:i] + "9" + text[i:]
        return "I am not sure which disk should move next; let me think about the pegs again."

    def __init__(self, disks: int, style: str = "paper"):
        if not isinstance(disks, int) or not 1 <= disks <= MAX_DISKS:
            raise ValueError(f"--disks must be an integer from 1 to {MAX_DISKS} (got {disks})")
        if style not in FORMATS:
            raise ValueError(f"unknown prompt style {style!r}; choose one of {', '.join(STYLES)}")
        self.disks, self.style = disks, style
        self.fmt = FORMATS[style](disks)  # the prompt/answer format: the only style switch
        self.sim_prose = self.fmt.sim_prose

    def describe(self) -> dict[str, Any]:
        return {"task": self.name, "disks": self.disks, "steps": self.num_steps(),
                "style": self.style}

    def num_steps(self) -> int:
        return 2**self.disks - 1

    def initial(self) -> HanoiInput:
        return HanoiInput(self.disks, initial_state(self.disks), None)

    def input_at(self, step: int) -> HanoiInput:
        """The input of step `step` on the reference trajectory (closed form)."""
        prev = move_at(self.disks, step - 1) if step > 0 else None
        return HanoiInput(self.disks, state_at(self.disks, step), prev)

    def render(self, x: HanoiInput) -> list[dict[str, str]]:
        return self.fmt.render(x)

    def constraint(self, x: HanoiInput) -> Constraint:
        return self.fmt.constraint

    def parse(self, text: str, x: HanoiInput, repair: bool = False) -> Parsed | Flag:
        return self.fmt.parse(text, repair)

    def check_rules(self, x: HanoiInput, answer: HanoiAnswer) -> Flag | None:
        why = illegal_reason(x.state, answer.move)
        if why:
            return Flag("rule", why)
        if apply_move(x.state, answer.move) != answer.next_state:
            return Flag("rule", "next_state does not follow from the move")
        return None

    def next_input(self, x: HanoiInput, answer: HanoiAnswer) -> HanoiInput:
        return HanoiInput(x.disks, answer.next_state, answer.move)

    def answer_from_key(self, key: str) -> HanoiAnswer:
        """The answer a canonical vote key stands for (used to rebuild the chain on resume)."""
        m, _, state = key.partition("|")
        d, a, b = (int(t) for t in m.split(","))
        pegs = json.loads(state)
        return HanoiAnswer((d, a, b), (tuple(pegs[0]), tuple(pegs[1]), tuple(pegs[2])))

    def text(self, answer: HanoiAnswer) -> str:
        """The answer as the model should write it, in this task's style."""
        return self.fmt.text(answer)

    def wrong_answers(self, x: HanoiInput, count: int) -> list[HanoiAnswer]:
        """Plausible wrong answers for `x`, most tempting first (for the sim and tests)."""
        ref = self.reference(x)
        if ref is None:
            return []
        right: HanoiAnswer = ref.answer
        d, a, b = right.move
        out: list[HanoiAnswer] = []

        def add(move: Move, state: State) -> None:
            cand = HanoiAnswer(move, state)
            if cand != right and cand not in out and len(out) < count:
                out.append(cand)

        # the other half of the rule: the non-disk-1 move when disk 1 is due, and vice versa
        alt = strategy_move(x.disks, x.state, (1, 0, 0) if d == 1 else (2, 0, 0))
        if alt is not None and not illegal_reason(x.state, alt):
            add(alt, apply_move(x.state, alt))
        # the same disk to the third peg (disk 1 the wrong way round, say), consistent state
        c = 3 - a - b
        add((d, a, c), apply_move(x.state, (d, a, c)))
        # the right move, but the disk written onto the wrong peg in next_state
        add(right.move, apply_move(x.state, (d, a, c)))
        # the right move, with the previous state copied unchanged
        add(right.move, x.state)
        # the right move, the pegs of next_state rotated
        s = right.next_state
        add(right.move, (s[2], s[0], s[1]))
        return out

    def reference(self, x: HanoiInput) -> Parsed | None:
        """The strategy's answer (None when it has no legal move); see reference_step."""
        got = reference_step(x.disks, x.state, x.prev_move)
        if got is None:
            return None
        return Parsed(got[0], HanoiAnswer(got[1], got[2]))
