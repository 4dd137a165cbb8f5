import pytest

from maker_local.tasks.base import Flag, Parsed
from maker_local.tasks.hanoi import Hanoi, parse_answer

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
    "So move = [1, 0, 1]",                # the key must be its line's first word
    "my_next_state = [[3, 2], [1], []]",
    "so next_state = [[3, 2], [1], []]",
    "next_state_guess = [[3, 2], [1], []]",
])
def test_near_misses_after_the_answer_are_never_read(near_miss):
    # the paper's parser takes the LAST match anywhere: a thought or an afterthought that
    # names a move or a state would become the vote; here only line-leading keys count
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


def test_repeated_blocks_take_the_last():
    text = ("move = [2, 0, 1]\nnext_state = [[3], [2], [1]]\nWait, that is wrong.\n" + RIGHT)
    assert parse(text).key == KEY
    # the last move and the last state are taken independently, as in the paper's parser
    mixed = RIGHT + "\nmove = [1, 0, 1]"
    assert parse(mixed).key == "1,0,1|[[3,2],[],[1]]"


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


def test_rules_are_separate_from_format():
    task = Hanoi(3)
    x = task.initial()
    illegal = task.parse("move = [3, 0, 2]\nnext_state = [[2, 1], [], [3]]", x)
    assert isinstance(illegal, Parsed)  # well formed ...
    assert task.check_rules(x, illegal.answer).reason == "rule"  # ... but illegal
    inconsistent = task.parse("move = [1, 0, 2]\nnext_state = [[3, 2], [1], []]", x)
    assert "does not follow" in task.check_rules(x, inconsistent.answer).detail
    assert task.check_rules(x, task.parse(RIGHT, x).answer) is None
