"""Long multiplication as an MDAP task: one single-digit multiply-accumulate per step.

A (m digits) times B (n digits), schoolbook order: row j = 0..n-1 takes B's digit j (least
significant first) and walks A's digits i = 0..m-1. Step s = j*m + i sees only four digits:
a = A_i, b = B_j, c = the accumulator's digit at position i+j, k = the carry into it; it
answers d = (a*b + c + k) mod 10, the new digit at i+j, and the carry out (a*b + c + k) div 10.
At the row's last digit the carry out becomes the accumulator's digit m+j (still 0 then).
After all m*n steps the accumulator is A*B. In the spirit of the paper's App. F: the state is
a number, not a peg layout, and the vote key is a digit and a carry, not a move.

Every step's input is known in closed form (big-integer arithmetic: the accumulator before
row j is A*(B mod 10^j)), so the `rounds` schedule certifies a 100,000-step product in
parallel, and `--steps A:B` starts anywhere. Operands come from `--seed-operands` (or are
given as `--a` / `--b`). Pure Python.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from .base import Constraint, Flag, Parsed, TaskBase

MAX_DIGITS = 100_000


@dataclass(frozen=True, slots=True)
class MulInput:
    """What one step sees (a, b, c, k), where it is (i, j), and the accumulator before it
    (only the chain needs it: the prompt shows four digits)."""

    i: int
    j: int
    a: int
    b: int
    c: int
    k: int
    acc: int


@dataclass(frozen=True, slots=True)
class MulAnswer:
    digit: int
    carry: int


def operands(digits_a: int, digits_b: int, seed: int) -> tuple[int, int]:
    """Two random operands with exactly these digit counts (no leading zero)."""
    rng = random.Random(seed)
    lo_a, lo_b = 10 ** (digits_a - 1), 10 ** (digits_b - 1)
    return rng.randrange(lo_a, 10 * lo_a), rng.randrange(lo_b, 10 * lo_b)


def _answer(m: re.Match[str]) -> Parsed:
    d, k = int(m.group(1)), int(m.group(2))
    return Parsed(f"{d},{k}", MulAnswer(d, k))


class CompactFormat:
    """The bundled step model's format: prompt `a=7;b=8;c=5;k=3`, answer `d=4;k=6`."""

    constraint = Constraint(regex=r"d=[0-9];k=[0-9]")
    _re = re.compile(r"d=([0-9]);k=([0-9])")

    @staticmethod
    def render(x: "MulInput") -> list[dict[str, str]]:
        return [{"role": "user", "content": f"a={x.a};b={x.b};c={x.c};k={x.k}"}]

    @classmethod
    def parse(cls, text: str) -> Parsed | Flag:
        m = cls._re.fullmatch(text.strip())
        return _answer(m) if m else Flag("parse", "not in the form d=<digit>;k=<carry>")

    @staticmethod
    def text(answer: "MulAnswer") -> str:
        return f"d={answer.digit};k={answer.carry}"


class PaperFormat:
    """Instructions in words, answer on two lines (`digit = 4`, `carry = 6`): the last such
    pair of lines, each key its line's first word, is the answer."""

    constraint = Constraint(regex=r"digit = [0-9]\ncarry = [0-9]")
    _re = re.compile(r"(?im)^[^\w\n]*digit\s*=\s*([0-9])\s*$\s*^[^\w\n]*carry\s*=\s*([0-9])\s*$")

    @staticmethod
    def render(x: "MulInput") -> list[dict[str, str]]:
        user = (f"a = {x.a}\nb = {x.b}\nc = {x.c}\nk = {x.k}\n"
                "Give the new digit and the carry out.")
        return [{"role": "system", "content": PAPER_SYSTEM}, {"role": "user", "content": user}]

    @classmethod
    def parse(cls, text: str) -> Parsed | Flag:
        ms = list(cls._re.finditer(text))
        return (_answer(ms[-1]) if ms else
                Flag("parse", "no 'digit = D' line followed by a 'carry = C' line"))

    @staticmethod
    def text(answer: "MulAnswer") -> str:
        return f"digit = {answer.digit}\ncarry = {answer.carry}"

PAPER_SYSTEM = """You are one step of a long multiplication done digit by digit.
You are given one digit a of the first number, one digit b of the second number, the current
digit c of the running total at this position, and the carry k into this position.
Compute t = a * b + c + k. The new digit is t mod 10; the carry out is t div 10 (t // 10).
Answer in exactly this format, and nothing else:
digit = <new digit>
carry = <carry out>"""


FORMATS = {"compact": CompactFormat, "paper": PaperFormat}


class Multiply(TaskBase):
    """a x b by single-digit steps: digits(a) * digits(b) steps."""

    name = "multiply"
    styles = tuple(FORMATS)
    size_label = "steps"
    default_profile = "mul-step"  # models/mul-step: the bundled multiply step model

    def __init__(self, a: int, b: int, style: str = "compact"):
        if not isinstance(a, int) or not isinstance(b, int) or a < 1 or b < 1:
            raise ValueError(f"multiply needs two positive integers (got {a!r}, {b!r})")
        if style not in self.styles:
            raise ValueError(f"unknown prompt style {style!r}; choose one of "
                             f"{', '.join(self.styles)}")
        self.a, self.b, self.style = a, b, style
        self.da, self.db = str(a)[::-1], str(b)[::-1]  # digits, least significant first
        self.m, self.n = len(self.da), len(self.db)
        if self.m > MAX_DIGITS or self.n > MAX_DIGITS:
            raise ValueError(f"operands of at most {MAX_DIGITS:,} digits")
        self._row_cache: tuple[int, int] | None = None  # (j, A * (B mod 10^j))
        self.fmt = FORMATS[style]  # the prompt/answer format: the only style switch

    # -------------------------------------------------------------- the plug-in's class side
    @classmethod
    def add_cli_args(cls, p: Any, purpose: str) -> None:
        p.add_argument("--digits", default="1000x100" if purpose != "calibrate" else
                       "10x10,100x10,1000x100", metavar="MxN" + ("[,MxN...]"
                                                                 if purpose == "calibrate"
                                                                 else ""),
                       help="multiply: digits of the two random operands (steps = M*N)"
                       + ("; sizes to sweep" if purpose == "calibrate" else ""))
        p.add_argument("--operands-seed", type=int, default=0,
                       help="multiply: seed of the random operands (default 0)")

    @classmethod
    def _one(cls, spec: str, seed: int, style: str) -> "Multiply":
        m, _, n = spec.strip().lower().partition("x")
        try:
            da, db = int(m), int(n)
        except ValueError:
            raise ValueError(f"--digits takes MxN, e.g. 1000x100 (got {spec!r})") from None
        if not (1 <= da <= MAX_DIGITS and 1 <= db <= MAX_DIGITS):
            raise ValueError(f"--digits: each operand has 1..{MAX_DIGITS:,} digits "
                             f"(got {spec!r})")
        return cls(*operands(da, db, seed), style=style)

    @classmethod
    def from_args(cls, args: Any, style: str) -> "Multiply":
        return cls._one(args.digits, args.operands_seed, style)

    @classmethod
    def grid(cls, args: Any, style: str) -> list["Multiply"]:
        return [cls._one(s, args.operands_seed, style) for s in args.digits.split(",") if s]

    def params(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "style": self.style}

    def describe(self) -> dict[str, Any]:
        # the operands themselves are the identity; their digit counts are for people
        return {"task": self.name, "a": self.a, "b": self.b, "style": self.style,
                "digits": f"{self.m}x{self.n}", "steps": self.num_steps()}

    @classmethod
    def from_describe(cls, d: dict[str, Any]) -> "Multiply":
        return cls(int(d["a"]), int(d["b"]), style=d.get("style", "compact"))

    def label(self) -> str:
        return f"{self.m} x {self.n} digits ({self.num_steps():,} steps)"

    def class_counts(self) -> dict[str, int]:
        """How many steps of this product see each input 'a,b,c,k' (a model card's classes:
        k auto weighs each input's exact p_i by how often the run meets it)."""
        counts: dict[str, int] = {}
        x = self.initial()
        for _ in range(self.num_steps()):  # the reference chain: O(steps) big-int updates
            key = f"{x.a},{x.b},{x.c},{x.k}"
            counts[key] = counts.get(key, 0) + 1
            x = self.next_input(x, self.reference(x).answer)
        return counts

    def class_name(self, row: dict[str, Any]) -> str:
        a, b, c, k = row["class"].split(",")
        return f"input a={a} b={b} c={c} k={k}"

    # ---------------------------------------------------------------------------- the task
    def num_steps(self) -> int:
        return self.m * self.n

    def _row_base(self, j: int) -> int:
        """A * (B mod 10^j): the accumulator before row j (cached for the current row)."""
        if self._row_cache is None or self._row_cache[0] != j:
            self._row_cache = (j, self.a * (self.b % 10**j))
        return self._row_cache[1]

    def input_at(self, step: int) -> MulInput:
        if not 0 <= step < self.num_steps():
            raise ValueError(f"step {step} is outside 0..{self.num_steps() - 1}")
        j, i = divmod(step, self.m)
        prev = self._row_base(j)
        bj = int(self.db[j])
        done = (self.a % 10**i) * bj * 10**j  # what row j has added so far
        acc = prev + done
        shift = 10 ** (i + j)
        # digits below i+j are final for this row; the carry into i+j is what the row's
        # partial product put above it beyond what was there
        carry = acc // shift - prev // shift
        c = (prev // shift) % 10
        # the accumulator as the chain holds it: low digits from acc, the rest from prev
        held = acc % shift + (prev // shift) * shift
        return MulInput(i, j, int(self.da[i]), bj, c, carry, held)

    def initial(self) -> MulInput:
        return self.input_at(0)

    def render(self, x: MulInput) -> list[dict[str, str]]:
        return self.fmt.render(x)

    def constraint(self, x: MulInput) -> Constraint:
        return self.fmt.constraint

    def parse(self, text: str, x: MulInput, repair: bool = False) -> Parsed | Flag:
        return self.fmt.parse(text)

    def check_rules(self, x: MulInput, answer: MulAnswer) -> Flag | None:
        # the carry out of a*b + c + k is at most 9 (9*9 + 9 + 9 = 99)
        if 10 * answer.carry + answer.digit > x.a * x.b + 18:
            return Flag("rule", "digit and carry exceed a*b + c + k for any c, k")
        return None

    def next_input(self, x: MulInput, answer: MulAnswer) -> MulInput:
        shift = 10 ** (x.i + x.j)
        acc = x.acc + (answer.digit - x.c) * shift
        i, j, carry = x.i + 1, x.j, answer.carry
        if i == self.m:  # the row's last digit: its carry is the accumulator's digit m+j
            acc += carry * 10 ** (self.m + x.j)
            i, j, carry = 0, j + 1, 0
            if j == self.n:  # done: the accumulator is the product (if every step was right)
                return MulInput(0, j, 0, 0, 0, 0, acc)
        c = (acc // 10 ** (i + j)) % 10
        return MulInput(i, j, int(self.da[i]), int(self.db[j]), c, carry, acc)

    def reference(self, x: MulInput) -> Parsed:
        t = x.a * x.b + x.c + x.k
        return Parsed(f"{t % 10},{t // 10}", MulAnswer(t % 10, t // 10))

    def answer_from_key(self, key: str) -> MulAnswer:
        d, k = key.split(",")
        return MulAnswer(int(d), int(k))

    def text(self, answer: MulAnswer) -> str:
        return self.fmt.text(answer)

    def wrong_answers(self, x: MulInput, count: int) -> list[MulAnswer]:
        """Plausible slips, most tempting first: the carry in forgotten, the accumulator
        digit forgotten, the carry off by one, digit and carry swapped."""
        t = x.a * x.b + x.c + x.k
        right = MulAnswer(t % 10, t // 10)
        out: list[MulAnswer] = []
        for v in (t - x.k, t - x.c, t + 10, t - 10, (t % 10) * 10 + t // 10, t + 1, t - 1):
            if 0 <= v <= 99:
                cand = MulAnswer(v % 10, v // 10)
                if cand != right and cand not in out:
                    out.append(cand)
        return out[:count]

    def malformed(self, text: str, u: float) -> str:
        """Never a changed digit (that is a valid, wrong answer here): the answer cut off
        before its carry, or prose."""
        if u < 0.5:
            return text[: text.index("k=") if "k=" in text else len(text) // 2]
        return "Let me add the carry first and then think about the digit."
