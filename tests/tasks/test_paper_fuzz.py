"""Fuzz test of the paper-format flag parser (tasks/hanoi.py, parse_answer).

The rule under test: an answer is a block, `move = [d, a, b]` and then `next_state = [[...],
[...], [...]]` with nothing but non-word characters (whitespace, punctuation, markdown) between
them; the last complete block is the answer, its move and its state together. So

- a block written in any content-preserving way (key case, spacing, tabs and newlines around
  `=`, one line or two, markdown, prose before or after) reads as that answer;
- a text that holds two answers reads as the last complete block, or is a flag: never the move
  of one with the state of the other;
- a move key inside a longer word (`remove =`) or a move with no state after it (a trailing
  "the previous move = [...]") is never read.

Three kinds of text, thousands each: renderings of the right answer (must read right), texts
that hold a wrong and a right answer (must read as the block the construction says), and
random edits of both, compared with the rule written a second way: a character scanner
(`spec_parse`, no regex) that the parser must agree with on every text.
"""
import random
from functools import lru_cache

from maker_local.tasks.base import Parsed
from maker_local.tasks.hanoi import Hanoi, answer_text, parse_answer
from maker_local.tasks.hanoi_rules import vote_key

# ------------------------------------------------------ the rule, written a second way


def _word(c):
    return c.isalnum() or c == "_"  # the regex's \w on str


def _spaces(t, i):
    while i < len(t) and t[i].isspace():
        i += 1
    return i


def _key(t, i, key):
    """The end of `key =` (any letter case, as re.IGNORECASE folds it) at t[i], or None."""
    seg = t[i:i + len(key)]
    if len(seg) != len(key) or not all(c.lower() == k or (c, k) == ("ſ", "s")
                                       for c, k in zip(seg, key)):
        return None
    i = _spaces(t, i + len(key))
    if i >= len(t) or t[i] != "=":
        return None
    return _spaces(t, i + 1)


def _list(t, i):
    """A list of plain decimals (no sign, no leading zero) at t[i]: (numbers, end) or None."""
    if i >= len(t) or t[i] != "[":
        return None
    i = _spaces(t, i + 1)
    out = []
    if i < len(t) and t[i] == "]":
        return out, i + 1
    while True:
        j = i
        while j < len(t) and "0" <= t[j] <= "9":
            j += 1
        if j == i or (t[i] == "0" and j > i + 1):
            return None
        out.append(int(t[i:j]))
        i = _spaces(t, j)
        if i < len(t) and t[i] == ",":
            i = _spaces(t, i + 1)
            continue
        if i < len(t) and t[i] == "]":
            return out, i + 1
        return None


def _block_at(t, i):
    """The block (move, pegs) that starts at t[i], or None."""
    if i > 0 and _word(t[i - 1]):  # a key is a whole word: not the end of "remove"
        return None
    i = _key(t, i, "move")
    got = i is not None and _list(t, i)
    if not got or len(got[0]) != 3:
        return None
    move, i = got
    while i < len(t) and not _word(t[i]):  # only non-word characters between move and state
        i += 1
    i = _key(t, i, "next_state")
    if i is None or i >= len(t) or t[i] != "[":
        return None
    pegs = []
    i = _spaces(t, i + 1)
    for j in range(3):
        got = _list(t, i)
        if not got:
            return None
        pegs.append(got[0])
        i = _spaces(t, got[1])
        want = "," if j < 2 else "]"
        if i >= len(t) or t[i] != want:
            return None
        i = _spaces(t, i + 1) if j < 2 else i + 1
    return move, pegs


@lru_cache(maxsize=1024)
def _last_block(t):
    starts = (i for i, c in enumerate(t) if c in "mM")  # "m" folds from no other character
    blocks = [b for i in starts if (b := _block_at(t, i))]
    return blocks[-1] if blocks else None


def spec_parse(t, n):
    """The vote key of the last complete block of `t` for n disks, or None (a flag)."""
    last = _last_block(t)
    if last is None:
        return None
    (d, a, b), pegs = last
    if not (1 <= d <= n and a <= 2 and b <= 2):
        return None
    if sorted(pegs[0] + pegs[1] + pegs[2]) != list(range(1, n + 1)):
        return None
    return vote_key((d, a, b), tuple(map(tuple, pegs)))


def key_of(text, n):
    got = parse_answer(text, n)
    return got.key if isinstance(got, Parsed) else None


# ------------------------------------------------------------------- model-like outputs

DECOR = [  # (before the move, between move and state, after the state)
    ("", "\n", ""), ("", "\n", ""), ("", " ", ""), ("", "\t", ""), ("", "\n\n", ""),
    ("", ", ", ""), ("", "; ", "."), ("", " \n", " "), ("", "\r\n", "\r\n"), ("- ", "\n- ", ""),
    ("* ", "\n* ", "\n"), ("> ", "\n> ", ""), ("`", "`\n`", "`"), ("**", "**\n**", "**"),
    ("```\n", "\n", "\n```"), ("", " | ", ""), ("(", ") (", ")"), ("", ",\n", ""),
]
EQ = [" = ", " = ", "=", " =", "= ", "\t=\t", " =\t", " =\n", "\n=\n", " = \n", "  =  "]
IN = ["", "", " ", "  ", "\t"]  # inside lists, around numbers and commas


def _nums(rng, xs):
    sp = rng.choice(IN)
    comma = rng.choice([",", ", ", ", ", " , ", ",\t", ",\n"])
    return "[" + sp + comma.join(map(str, xs)) + sp + "]"


def move_part(rng, move):
    return rng.choice(["move", "Move", "MOVE"]) + rng.choice(EQ) + _nums(rng, move)


def state_part(rng, state):
    comma = rng.choice([", ", ",", " , ", ",\n", ", \t"])
    key = rng.choice(["next_state", "Next_State", "NEXT_STATE", "Next_state"])
    sp = rng.choice(["", "", " ", "\n"])
    return key + rng.choice(EQ) + "[" + sp + comma.join(_nums(rng, p) for p in state) + sp + "]"


def block(rng, answer):
    pre, mid, post = rng.choice(DECOR)
    return pre + move_part(rng, answer.move) + mid + state_part(rng, answer.next_state) + post


def lead_ins(task, x):
    prev = "none" if x.prev_move is None else str(list(x.prev_move))
    return ["", "", "\n", task.sim_prose, "Answer:\n", "Final answer: ", "So the answer is\n",
            f"The previous move = {prev} decides the rule.\n",
            f"Previous move: {prev}\nCurrent state: {list(map(list, x.state))}\n",
            "<think>\nDisk 1 moved last, so the other move.\n</think>\n",
            "I will not remove = [1, 0, 2] anything.\n"]


def endings(task, x):
    prev = "none" if x.prev_move is None else str(list(x.prev_move))
    return ["", "", "\n", "  ", "\n\n", " Done.", "\nDone.", "\nThis follows the procedure.",
            f"\n(the previous move = {prev} moved disk 1)", "\nremove = [1, 0, 1]",
            "\nmy_next_state = [[1], [], []]", "\nnext_state_guess = [[], [], [1]]",
            "\nmoves = [[1, 0, 2], [2, 0, 1]]"]


def steps(rng):
    """(task, input) pairs: whole small towers and random steps of large ones."""
    for n in (1, 2, 3, 4):
        task = Hanoi(n)
        for i in range(2**n - 1):
            yield task, task.input_at(i)
    for n, count in ((7, 40), (12, 40), (20, 80)):
        task = Hanoi(n)
        for _ in range(count):
            yield task, task.input_at(rng.randrange(2**n - 1))


def _cases():
    """(text, n, the key it must read as or None for a flag, the keys it must never read as)."""
    rng = random.Random(19)
    for task, x in steps(rng):
        n = task.disks
        right = task.reference(x).answer
        good = vote_key(right.move, right.next_state)
        lead, end = lead_ins(task, x), endings(task, x)
        for _ in range(8):  # the right answer, rendered in content-preserving ways
            yield rng.choice(lead) + block(rng, right) + rng.choice(end), n, good, ()
        for wrong in task.wrong_answers(x, 3):
            bad = vote_key(wrong.move, wrong.next_state)
            mixed = {vote_key(wrong.move, right.next_state),
                     vote_key(right.move, wrong.next_state)} - {good, bad}
            w, r = block(rng, wrong), block(rng, right)
            lone_w_move = move_part(rng, wrong.move)
            lone_w_state = state_part(rng, wrong.next_state)
            fix = rng.choice(["\nNo, correction: ", " No, correction: ", "\nWait, that is wrong.\n",
                              "\n\nActually, let me redo this.\n", "\nCorrection:\n",
                              f"\nThe previous move = {list(wrong.move)} was wrong; instead\n"])
            for text, want in [
                (w + fix + r, good),                                       # corrected
                (r + "\n" + rng.choice(["", "So ", "the previous ", "- "]) + lone_w_move, good),
                (r + "\n" + lone_w_state, good),                           # a stray state after
                (lone_w_move + "\n" + r, good),                            # a stray move before
                (lone_w_state + "\n" + r, good),
                (move_part(rng, wrong.move) + "\n" + block(rng, right), good),
                (r + fix + w, bad),                                        # "corrected" to wrong
                (lone_w_move + "\nwhich gives\n" + state_part(rng, right.next_state), None),
                (state_part(rng, right.next_state) + "\n" + move_part(rng, right.move), None),
            ]:
                yield rng.choice(lead) + text + rng.choice(end), n, want, mixed


CASES = list(_cases())


def test_the_fuzz_is_big_enough():
    assert len(CASES) > 5000
    assert sum(want is not None and not bad for _, _, want, bad in CASES) > 1500


def test_every_rendering_reads_as_its_block_and_never_a_mixed_answer():
    wrong = []
    for text, n, want, mixed in CASES:
        got = key_of(text, n)
        assert got not in mixed, ("a mixed answer", text, got)
        if got != want:
            wrong.append((text, got, want))
    assert not wrong, f"{len(wrong)} of {len(CASES)} read wrong, e.g. {wrong[:3]}"


def test_the_parser_is_the_rule_on_the_fuzz_texts():
    for text, n, _, _ in CASES:
        assert key_of(text, n) == spec_parse(text, n), text


def test_the_parser_is_the_rule_on_random_edits():
    """One to three random edits of each text (characters that can join, split, break or
    forge a key or a list), compared with the scanner: no edit makes a mixed answer that the
    rule would not read, or makes a text read that the rule flags."""
    rng = random.Random(1919)
    alphabet = [" ", "\n", "\t", "\r", "\u00a0", "0", "1", "2", "3", "9", ",", "[", "]", "=",
                "m", "M", "o", "v", "e", "n", "x", "t", "s", "S", "ſ", "a", "_", "-", "*", "`",
                ":", "r", "\u0661", "move = [", "next_state = [[", "], [", "]\n"]
    count = 0
    for text, n, _, _ in rng.sample(CASES, 3000):
        for _ in range(4):
            t = text
            for _ in range(rng.randint(1, 3)):
                j = rng.randrange(len(t) + 1)
                t = t[:j] + rng.choice(alphabet) + t[j + rng.randrange(3):]
            assert key_of(t, n) == spec_parse(t, n), t
            count += 1
    assert count == 12000


def test_the_scanner_reads_known_texts():
    """The second writing of the rule, checked on its own against hand-made cases."""
    right, key = "move = [1, 0, 2]\nnext_state = [[3, 2], [], [1]]", "1,0,2|[[3,2],[],[1]]"
    assert spec_parse(right, 3) == key
    assert spec_parse("move = [1, 0, 2] next_state = [[3, 2], [], [1]]", 3) == key
    assert spec_parse("remove = [1, 0, 2]\nnext_state = [[3, 2], [], [1]]", 3) is None
    assert spec_parse("move = [1, 0, 2]\nso next_state = [[3, 2], [], [1]]", 3) is None
    assert spec_parse(right + "\nmove = [2, 0, 1]", 3) == key
    assert spec_parse("move = [01, 0, 2]\nnext_state = [[3, 2], [], [1]]", 3) is None
    assert spec_parse("move = [1, 0, 2]\nnext_state = [[3, 2], [], [1,]]", 3) is None
    assert spec_parse("move = [1, 0, 2]\nnext_state = [[3, 2], [1], []]", 3) == (
        "1,0,2|[[3,2],[1],[]]")  # well formed; the rule check is another matter
    assert spec_parse("move = [1, 0, 2]\nnext_state = [[3, 2], [1], [1]]", 3) is None


def test_answer_text_is_a_block():
    task = Hanoi(5)
    x = task.input_at(9)
    ref = task.reference(x)
    assert spec_parse(answer_text(ref.answer), 5) == ref.key == key_of(answer_text(ref.answer), 5)
