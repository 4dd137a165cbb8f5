import random
import re

import pytest

from maker_local.tasks.base import Flag, Parsed
from maker_local.tasks.hanoi import (Hanoi, PaperFormat, _parse_block, answer_text,
                                     parse_answer)
from maker_local.tasks.hanoi_compact import (LABELS, answer_compact, move_compact,
                                             parse_compact, state_compact)
from maker_local.tasks.hanoi_rules import HanoiAnswer, vote_key

from test_paper_fuzz import spec_parse

RIGHT = "move = [1, 0, 2]\nnext_state = [[3, 2], [], [1]]"
KEY = "1,0,2|[[3,2],[],[1]]"


def parse(text, repair=False):
    return parse_answer(text, 3, repair)


def test_exact_format():
    got = parse(RIGHT)
    assert isinstance(got, Parsed) and got.key == KEY
    assert got.answer.next_state == ((3, 2), (), (1,))


def test_extra_prose_and_spacing():
    text = ("Disk 1 was not moved last, so it moves clockwise.\n"
            "move=[ 1,0 ,2 ]\n\n  next_state =[[3,2] , [ ], [1]]  Done.")
    assert parse(text).key == KEY
    # markdown around the answer lines is not prose
    assert parse("- move = [1, 0, 2]\n> `next_state = [[3, 2], [], [1]]`").key == KEY


@pytest.mark.parametrize("near_miss", [
    "the previous move = [1, 0, 1]",      # prose that names a move
    "previous move = [1, 0, 1]",
    "remove = [1, 0, 1]",                 # a longer word ending in 'move'
    "So move = [1, 0, 1]",                # a move with no next_state after it
    "my_next_state = [[3, 2], [1], []]",
    "so next_state = [[3, 2], [1], []]",
    "next_state_guess = [[3, 2], [1], []]",
])
def test_near_misses_after_the_answer_are_never_read(near_miss):
    # the paper's parser takes the LAST match of each key anywhere: a thought or an
    # afterthought that names a move or a state would become (half of) the vote; here only a
    # complete block of whole-word keys counts
    assert parse(RIGHT + "\n" + near_miss).key == KEY
    assert parse(near_miss + "\n" + RIGHT).key == KEY


def test_a_thought_alone_is_no_answer():
    thought = ("previous move = [1, 0, 2], so my_next_state = [[3, 2], [], [1]]; "
               "remove = [2, 0, 1]")
    got = parse(thought)
    assert isinstance(got, Flag) and got.reason == "parse"


def test_letter_case_of_keys_is_free_as_in_the_paper():
    assert parse("MOVE = [1, 0, 2]\nNext_State = [[3, 2], [], [1]]").key == KEY


@pytest.mark.parametrize("text", [
    "move = [01, 0, 2]\nnext_state = [[3, 2], [], [1]]",      # leading zero (literal_eval: error)
    "move = [1, 0, 2]\nnext_state = [[3, 2], [], [01]]",
    "move = [1, 00, 2]\nnext_state = [[3, 2], [], [1]]",      # literal_eval reads 00 as 0
    "move = [\u0661, 0, 2]\nnext_state = [[3, 2], [], [1]]",  # Arabic-Indic one
    "move = [1, 0, 2]\nnext_state = [[3, 2], [], [\uff11]]",  # fullwidth one
    "move = [True, 0, 2]\nnext_state = [[3, 2], [], [1]]",    # literal_eval: an int
    "move = [1, -0, 2]\nnext_state = [[3, 2], [], [1]]",
    "move = [1, 0, 2]\nnext_state = [[3, 2], [], [+1]]",
    "move = [1_0, 0, 2]\nnext_state = [[3, 2], [], [1]]",
])
def test_only_plain_ascii_decimals(text):
    got = parse(text)
    assert isinstance(got, Flag) and got.reason == "parse", text


WRONG = "move = [2, 0, 1]\nnext_state = [[3], [2], [1]]"


def test_repeated_blocks_take_the_last():
    assert parse(WRONG + "\nWait, that is wrong.\n" + RIGHT).key == KEY
    assert parse(RIGHT + "\nWait.\n" + WRONG).key == "2,0,1|[[3],[2],[1]]"


@pytest.mark.parametrize("text", [
    WRONG + "\nNo, correction: " + RIGHT,   # the paper's parser: 2,0,1 with [[3, 2], [], [1]]
    WRONG + " No, correction: " + RIGHT.replace("\n", " "),
    RIGHT + "\nmove = [1, 0, 1]",            # a move with no state after it is no block
    RIGHT + "\nSo move = [2, 0, 1], I think",
    RIGHT + "\nnext_state = [[3], [2], [1]]",  # nor a state with no move before it
    "move = [2, 0, 1]\n" + RIGHT,
    "next_state = [[3], [2], [1]]\n" + RIGHT,
])
def test_move_and_state_come_from_one_block(text):
    assert parse(text).key == KEY


@pytest.mark.parametrize("text", [
    "move = [1, 0, 2] next_state = [[3, 2], [], [1]]",     # one line
    "move = [1, 0, 2]\tnext_state = [[3, 2], [], [1]]",
    "move = [1, 0, 2], next_state = [[3, 2], [], [1]]",
    "move = [1, 0, 2]; next_state = [[3, 2], [], [1]].",
    "move =\t[1, 0, 2]\tnext_state =\t[[3, 2], [], [1]]",  # a tab or a newline after `=`
    "move =\n[1, 0, 2]\nnext_state =\n[[3, 2], [], [1]]",
    "move\t=\t[1,\t0,\t2]\nnext_state\t=\t[[3,\t2],\t[],\t[1]]",
    "`move = [1, 0, 2]`, `next_state = [[3, 2], [], [1]]`",
    "Answer: move = [1, 0, 2]\nnext_state = [[3, 2], [], [1]]",
])
def test_one_line_answers_and_any_whitespace_read(text):
    assert parse(text).key == KEY


@pytest.mark.parametrize("text,why", [
    ("move = [1, 0, 2]\nwhich gives\nnext_state = [[3, 2], [], [1]]", "no next_state"),
    ("next_state = [[3, 2], [], [1]]\nmove = [1, 0, 2]", "no next_state"),  # state first
    ("move = [1, 0, 2] and next_state = [[3, 2], [], [1]]", "no next_state"),
    ("remove = [1, 0, 2]\nnext_state = [[3, 2], [], [1]]", "no move"),
    ("move = [1, 0, 2]\nmy_next_state = [[3, 2], [], [1]]", "no next_state"),
])
def test_words_between_move_and_state_make_no_block(text, why):
    got = parse(text)
    assert isinstance(got, Flag) and why in got.detail, got


@pytest.mark.parametrize("text,why", [
    ("", "no move"),
    ("I think disk 1 goes to peg 2.", "no move"),
    ("move = [1, 0, 2]", "no next_state"),
    ("move = [1, 0, 2]\nnext_state = [[3, 2], [], [1", "no next_state"),  # truncated
    ("move = [1, 0, 2]\nnext_state = [[3, 2], [1]]", "no next_state"),  # two pegs
    ("move = [1, 0, 2]\nnext_state = [[3, 2], [], [1, 1]]", "exactly once"),
    ("move = [1, 0, 2]\nnext_state = [[3, 2], [], []]", "exactly once"),
    ("move = [1, 0, 2]\nnext_state = [[3, 2], [], [4]]", "exactly once"),
    ("move = [1, 0, 2]\nnext_state = [[3, 2], [], [1.0]]", "no next_state"),
    ("move = [1, 0, 2]\nnext_state = [[3, 2], [], [a]]", "no next_state"),
    ("move = [1, 0, 2]\nnext_state = [[3, 2], [], [1,,]]", "no next_state"),
    ("move = [4, 0, 2]\n" + RIGHT.split("\n")[1], "out of range"),
    ("move = [1, 0, 3]\n" + RIGHT.split("\n")[1], "out of range"),
    ("move = [1, 0]\n" + RIGHT.split("\n")[1], "no move"),
    ("move: (1, 0, 2)\nnext_state: ((3, 2), (), (1,))", "no move"),
])
def test_malformed_is_a_flag(text, why):
    got = parse(text)
    assert isinstance(got, Flag) and got.reason == "parse"
    assert why in got.detail


def test_spacing_is_canonicalised_in_the_key():
    assert parse("move = [ 1 ,0, 2]\nnext_state = [[3,2],[ ],[ 1 ]]").key == KEY


def test_repairing_parser_accepts_loose_formats():
    for text in ["Move: (1, 0, 2)\nNext state: [[3, 2], [], [1]]",
                 '{"move": [1, 0, 2], "next_state": [[3, 2], [], [1]]}',
                 "move = [1 0 2]\nnext-state = [[3 2] [] [1]]",
                 RIGHT]:
        got = parse(text, repair=True)
        assert isinstance(got, Parsed) and got.key == KEY, text
    assert isinstance(parse("nonsense", repair=True), Flag)
    assert isinstance(parse("move: (1, 0, 2)\nnext state: [[3], [], [1]]", repair=True), Flag)


def test_repairing_parser_reads_the_last_block():
    """The old repairing parser took the last move and the last next_state apart, so a text
    with a corrected move and an older state gave one answer's move with the other's state
    (below: '1,0,2|[[3],[2],[1]]', which neither answer says). Now an answer is a block, as
    for the flag parser: the move, then only non-word characters, then its state."""
    corrected = ("move = [2, 0, 1], next_state = [[3], [2], [1]]? No.\n"
                 "move = [1, 0, 2]\nnext_state = [[3, 2], [], [1]]\n"
                 "(the first next_state = [[3], [2], [1]] was wrong)")
    assert parse(corrected, repair=True).key == KEY == parse(corrected).key
    afterthought = "move = [2, 0, 1]\nnext_state = [[3], [2], [1]]\nNo, it is move = [1, 0, 2]."
    got = parse(afterthought, repair=True)  # the correction has no state: no block
    assert got.key == "2,0,1|[[3],[2],[1]]" == parse(afterthought).key
    for text in ['{"move": [1, 0, 2], "next_state": [[3, 2], [], [1]]}',
                 "{'move': (1, 0, 2), 'next_state': ([3, 2], [], [1])}",
                 "move = [1 0 2]   next state = [[3 2] [] [1]]",
                 "move = [1; 0; 2]; next_state = [[3, 2], [], [1]]",
                 "move: [1, 0, 2];\n\n  next-state: [[3, 2], [], [1]]",
                 "MOVE = [1, 0, 2] -- NEXT_STATE = [[3, 2], [], [1]]"]:
        got = parse(text, repair=True)
        assert isinstance(got, Parsed) and got.key == KEY, text
    for text, why in [("nonsense", "no move"),
                      ("move = [1, 0, 2] then next_state = [[3, 2], [], [1]]",
                       "no next_state = [[...], [...], [...]] right after a move"),
                      ("next_state = [[3, 2], [], [1]]\nmove = [1, 0, 2]",
                       "right after a move"),
                      ("move = [1, 0, 2]", "right after a move")]:
        got = parse(text, repair=True)
        assert isinstance(got, Flag) and got.reason == "parse" and why in got.detail, text


def test_rules_are_separate_from_format():
    task = Hanoi(3)
    x = task.initial()
    illegal = task.parse("move = [3, 0, 2]\nnext_state = [[2, 1], [], [3]]", x)
    assert isinstance(illegal, Parsed)  # well formed ...
    assert task.check_rules(x, illegal.answer).reason == "rule"  # ... but illegal
    inconsistent = task.parse("move = [1, 0, 2]\nnext_state = [[3, 2], [1], []]", x)
    assert "does not follow" in task.check_rules(x, inconsistent.answer).detail
    assert task.check_rules(x, task.parse(RIGHT, x).answer) is None


# ------------------------------------------------------------------ the fast path, differential
#
# parse_answer reads a text that ends with the canonical answer without its general search
# (hanoi._parse_canonical). Below: tests that the two paths give equal verdicts (the same
# Parsed, or the same Flag with the same detail) on every kind of text the sim writes and on
# many that it does not, and that both read what the rule written a second way (the character
# scanner of test_paper_fuzz) reads.

def _old_answer_text(answer):
    m, s = answer.move, answer.next_state
    pegs = ", ".join(f"[{', '.join(map(str, p))}]" for p in s)
    return f"move = [{m[0]}, {m[1]}, {m[2]}]\nnext_state = [{pegs}]"


def _same(text, n):
    want = _parse_block(text, n)  # the general path alone
    got = parse_answer(text, n)
    assert type(got) is type(want) and got == want, (text, n, got, want)
    if 1 <= n <= 30:
        assert (got.key if isinstance(got, Parsed) else None) == spec_parse(text, n), (text, n)
    if isinstance(got, Parsed):  # the answer's parts are plain ints and tuples
        assert type(got.key) is str
        assert all(type(v) is int for v in got.answer.move)
        assert all(type(p) is tuple and all(type(d) is int for d in p)
                   for p in got.answer.next_state)
    return got


def _variants(t, other):
    """A canonical answer text `t` (and another answer's `other`) in many guises."""
    move_line, state_line = t.split("\n")
    prose = PaperFormat.sim_prose
    yield from [
        t, prose + t, "\n" + t, t + "\n", t + "\n\n", t + "  ", t + " \n \t", t + "\u00a0",
        t + "\r\n", t.replace("\n", "\r\n"), "x" + t, " " + t, "- " + t, "> " + t,
        prose + "\n\n" + t + "\n",
        t.upper(), t.replace("move", "Move"), t.replace("move", "MOVE"),
        t.replace("next_state", "Next_State"), t.replace("next_state", "next_ſtate"),
        t.replace("move", "mOve"), t.replace("move =", "move="), t.replace("= [", "=["),
        t.replace(", ", ","), t.replace(", ", " , "), t.replace("], [", "],["),
        t.replace("[[", "[ ["), t.replace("]]", "] ]"), t.replace("\n", "\n\n"),
        t.replace("\n", " \n"), t.replace("\n", "\n "), t.replace("\n", "\n- "),
        "- " + move_line + "\n- " + state_line, "* " + t.replace("\n", "\n* "),
        "`" + move_line + "`\n`" + state_line + "`", "**" + t.replace("\n", "\n**"),
        state_line + "\n" + move_line, move_line, state_line, move_line + "\n",
        move_line + "\n" + move_line + "\n" + state_line,
        move_line + "\n" + state_line + "\n" + state_line,
        t + "\n" + other, other + "\n" + t, t + "\n" + other.split("\n")[0],
        t + "\n" + other.split("\n")[1], other.split("\n")[0] + "\n" + t,
        other.split("\n")[1] + "\n" + t, prose + other + "\n" + t,
        t + "\nmove = [1, 0, 1]", "move = [1, 0, 1]\n" + t, t + "\nremove = [1, 0, 1]",
        t + "\nthe previous move = [1, 0, 1]", t + "\nso move = [1, 0, 1]",
        t + "\n- move = [1, 0, 1]", t + "\nMOVE = [1, 0, 1]", t + "\nnext_state = [[], [], []]",
        t + "\nmy_next_state = [[1], [], []]", t + " Done.", t + "\nDone.", t + "]", t + ",",
        t + "\n]", t[:-1], t[:-2], t[:-3] + "]]", t.replace("]]", "]]]"),
        t.replace("]]", ", ]]"), t.replace("]]", ",]]"), t.replace("], [", "], [], ["),
        t.replace("], [", ", "), t.replace("[[", "[[0, "), t.replace("[[", "[[01, "),
        t.replace("[[", "[[+"), t.replace(", ", ",  "), t.replace(", ", "\n, "),
        t.replace("]\nnext", "] \nnext"), t.replace("]\nnext", "]\nnext\n"),
        t.replace("move = [", "move = [0"), t.replace("move = [", "move = [1_"),
        t.replace("move = [", "move = [\uff11"), t.replace("move = [", "move = [-"),
        t.replace("move = [", "move = [ "), t.replace("move = [", "move = [9"),
        t.replace("move = [", "move = [31, 0, 2]\nmove = ["),
        move_line.replace("move", "remove") + "\n" + state_line,
        move_line.replace("move", "remove") + "\n" + t,
        t.replace("\nnext_state", "\nremark\nnext_state"),
        t.replace("\nnext_state", "\nnext_state = [[\nnext_state"),
        t.replace("\n", "\nmove = [1, 0, 2]\n"),
        move_line + "\n" + state_line.replace("next_state", "next_state\n"),
        "move =\n[" + t[len("move = ["):], t.replace("next_state = [[", "next_state =\n[[\n"),
        t.replace("0", "\u0660"), t.replace("1", "\uff11"),
    ]
    # a disk twice (on its own peg or on another), a disk missing, numbers that are no disk
    pegs = [p.split(", ") if p else [] for p in state_line[len("next_state = [["):-2]
            .split("], [")]
    for i, j in [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 0)]:
        for extra in ([pegs[i][-1]] if pegs[i] else []) + ["0", "31", "99", "1", "2"]:
            for drop in (False, True):
                new = [list(p) for p in pegs]
                if drop and new[i]:
                    new[i].pop()
                new[j].append(extra)
                yield move_line + "\nnext_state = [" + ", ".join(
                    "[" + ", ".join(p) + "]" for p in new) + "]"


def _texts_for(task, x):
    """The sim's texts for x (right, wrong, malformed) and their variants."""
    ref = task.reference(x)
    right = answer_text(ref.answer)
    wrongs = [answer_text(w) for w in task.wrong_answers(x, 3)]
    out = [task.sim_prose + right]
    out += [task.sim_prose + w for w in wrongs]
    out += [task.malformed(task.sim_prose + right, u) for u in (0.1, 0.3, 0.5, 0.6, 0.9)]
    out += [task.malformed(right, u) for u in (0.1, 0.5)]
    other = wrongs[0] if wrongs else right
    out += list(_variants(right, other))
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 6, 9])
def test_fast_parse_matches_the_general_path_on_every_step(n):
    task = Hanoi(n)
    x = task.initial()
    for i in range(2**n - 1):
        for text in _texts_for(task, x):
            _same(text, n)
            for other_n in {1, n - 1, n + 1, 20}:  # the texts of another tower, too
                if other_n >= 1:
                    _same(text, other_n)
        x = task.next_input(x, task.reference(x).answer)


def test_fast_parse_matches_the_general_path_on_random_20_disk_steps():
    task = Hanoi(20)
    rng = random.Random(20)
    for _ in range(300):
        x = task.input_at(rng.randrange(2**20 - 1))
        for text in _texts_for(task, x):
            _same(text, 20)
        # the sim's right text takes the fast path and is the reference answer
        got = parse_answer(task.sim_prose + answer_text(task.reference(x).answer), 20)
        assert got == task.reference(x)


def test_fast_parse_matches_the_general_path_on_mutations():
    """Every prefix and suffix, and many one- and two-character edits, of answer texts."""
    rng = random.Random(7)
    alphabet = [" ", "\n", "\t", "\r", "0", "1", "2", "3", "9", ",", "[", "]", "=", "m", "M",
                "n", "_", "-", "*", "x", "\u00a0", "\u0661", "ſ"]
    for n, i in [(3, 0), (3, 5), (4, 7), (20, 123_456)]:
        task = Hanoi(n)
        x = task.input_at(i)
        base = task.sim_prose + answer_text(task.reference(x).answer)
        for text in (base, answer_text(task.reference(x).answer)):
            for j in range(len(text) + 1):
                _same(text[:j], n)
                _same(text[j:], n)
            for j in range(len(text)):
                _same(text[:j] + text[j + 1:], n)  # a character dropped
                for c in rng.sample(alphabet, 6):
                    _same(text[:j] + c + text[j:], n)  # inserted
                    _same(text[:j] + c + text[j + 1:], n)  # replaced
            for _ in range(2000):  # two random edits anywhere
                t = text
                for _ in range(2):
                    j = rng.randrange(len(t) + 1)
                    t = t[:j] + rng.choice(alphabet) + t[j + rng.randrange(2):]
                _same(t, n)


@pytest.mark.parametrize("n", [0, -1, 3, 30, 31, 40])
def test_fast_parse_matches_the_general_path_for_any_disk_count(n):
    for d in (1, 2, 3, 29, 30, 31, 35):
        for a, b in [(0, 2), (1, 1), (2, 0)]:
            for state in ["[[3, 2], [], [1]]", "[[], [], []]", "[[30, 29], [1], [0]]",
                          "[[" + ", ".join(map(str, range(n, 0, -1))) + "], [], []]"]:
                _same(f"move = [{d}, {a}, {b}]\nnext_state = {state}", n)


def test_the_repairing_parser_is_unchanged():
    for text in ["Move: (1, 0, 2)\nNext state: [[3, 2], [], [1]]",
                 '{"move": [1, 0, 2], "next_state": [[3, 2], [], [1]]}', RIGHT, "nonsense"]:
        got = parse(text, repair=True)
        assert isinstance(got, Flag) or got.key == KEY


def test_answer_text_unchanged():
    rng = random.Random(3)
    for n in (1, 3, 20):
        task = Hanoi(n)
        for i in {0, 2**n - 2} | {rng.randrange(2**n - 1) for _ in range(50)}:
            x = task.input_at(i)
            for a in [task.reference(x).answer] + task.wrong_answers(x, 3):
                assert answer_text(a) == _old_answer_text(a)
                assert task.text(a) == _old_answer_text(a)


def test_canonical_texts_take_the_fast_path():
    from maker_local.tasks.hanoi import _parse_canonical
    task = Hanoi(20)
    for i in (0, 1, 777, 2**20 - 2):
        x = task.input_at(i)
        right = answer_text(task.reference(x).answer)
        for text in (right, task.sim_prose + right, right + "\n", "- a note\n" + right):
            assert _parse_canonical(text, 20) == task.reference(x)
        for w in task.wrong_answers(x, 3):
            assert isinstance(_parse_canonical(task.sim_prose + answer_text(w), 20), Parsed)
        for text in ("- " + right, right.upper(), right + "\nDone.", right[:-1]):
            assert _parse_canonical(text, 20) is None  # the general path reads these


# ------------------------------------------------------- the compact format, differential

_O_COMPACT_RE = re.compile(r"m=([a-z])([0-2])([0-2]);s=((?:[a-z][0-2])+)")


def old_parse_compact(text, n):
    """parse_compact as first written."""
    m = _O_COMPACT_RE.fullmatch(text.strip())
    if m is None:
        return Flag("parse", "not in the form m=<disk><from><to>;s=<disk><peg>...")
    disk = LABELS.index(m.group(1)) + 1
    if disk > n:
        return Flag("parse", f"move names disk {disk} of {n}")
    move = (disk, int(m.group(2)), int(m.group(3)))
    body = m.group(4)
    if body[0::2] != LABELS[:n][::-1]:
        return Flag("parse", f"next state does not list disks {n}..1 once each, in order")
    pegs = [[], [], []]
    for j in range(n):
        pegs[int(body[2 * j + 1])].append(n - j)
    state = (tuple(pegs[0]), tuple(pegs[1]), tuple(pegs[2]))
    return Parsed(vote_key(move, state), HanoiAnswer(move, state))


def old_state_compact(state, n):
    where = [0] * (n + 1)
    for peg, disks in enumerate(state):
        for d in disks:
            where[d] = peg
    return "".join(f"{LABELS[d - 1]}{where[d]}" for d in range(n, 0, -1))


def _same_compact(text, n):
    want, got = old_parse_compact(text, n), parse_compact(text, n)
    assert type(got) is type(want) and got == want, (text, n, got, want)


def _same_state_compact(state, n):
    try:
        want = old_state_compact(state, n)
    except Exception as e:  # noqa: BLE001 - the same error, or none
        with pytest.raises(type(e)):
            state_compact(state, n)
        return
    assert state_compact(state, n) == want, (state, n)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 20])
def test_compact_format_matches_its_first_version(n):
    task = Hanoi(n, style="compact")
    rng = random.Random(n)
    steps = range(2**n - 1) if n <= 8 else [rng.randrange(2**n - 1) for _ in range(300)]
    alphabet = ["a", "b", "c", "t", "z", "0", "1", "2", "3", ";", "=", "m", "s", " ", "\n", "A"]
    for i in steps:
        x = task.input_at(i)
        answers = [task.reference(x).answer] + task.wrong_answers(x, 3)
        for a in answers:
            s = a.next_state
            assert answer_compact(a) == (f"m={LABELS[a.move[0] - 1]}{a.move[1]}{a.move[2]};"
                                         f"s={old_state_compact(s, n)}")
            assert move_compact(a.move) == f"{LABELS[a.move[0] - 1]}{a.move[1]}{a.move[2]}"
            _same_state_compact(s, n)
            _same_state_compact((s[1], s[2], s[0]), n)
        right = task.text(answers[0])
        texts = [right, " " + right + "\n", task.malformed(right, 0.1), task.malformed(right, 0.5),
                 task.malformed(right, 0.9), right.upper(), right + ";", right[:-1] + "3"]
        texts += [task.text(a) for a in answers[1:]]
        for j in range(len(right)):
            texts.append(right[:j] + right[j + 1:])
            for c in rng.sample(alphabet, 3):
                texts.append(right[:j] + c + right[j + 1:])
                texts.append(right[:j] + c + right[j:])
        for text in texts:
            for m in {n, max(1, n - 1), n + 1, 26}:
                _same_compact(text, m)


def test_compact_state_text_on_odd_states():
    for n in (1, 3, 6, 26):
        full = tuple(range(n, 0, -1))
        for s in [(full, (), ()), ((), (), full), (full, full, ()), ((), (), ()),
                  ((0,), (1,), ()), ((-1,), (), (2,)), ((n + 1,), (), ()), ((1,), (1,), (1,)),
                  (full, (), (), (1,)), tuple(() for _ in range(10)) + (full,),
                  tuple(() for _ in range(11)) + (full,), (full[:1], (), full[1:])]:
            _same_state_compact(s, n)
    for bad in (0, 27):
        with pytest.raises(ValueError):
            state_compact(((1,), (), ()), bad)
        with pytest.raises(ValueError):
            parse_compact("m=a02;s=a2", bad)
