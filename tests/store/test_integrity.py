"""An edited ledger is noticed: each round's digest chains to the one before, `--resume` and
`report` check the chain and refuse an altered ledger with one line naming the round."""
import json
import shutil
import sqlite3

import pytest

from conftest import run_sub, sim_solve
from maker_local.store import Ledger

ARGS = ["--disks", "8", "--window", "64", "--k", "3", "--sim-error", "0.1", "--sim-valid",
        "0.9", "--seed", "3", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run, and the same run as it was after 3 rounds (steps still undecided): its
    later rounds taken off, as a kill at that moment leaves it."""
    base = tmp_path_factory.mktemp("runs")
    assert sim_solve(*ARGS, "--run-dir", base / "done").returncode in (0, 1)
    shutil.copytree(base / "done", base / "half")
    con = sqlite3.connect(base / "half" / "ledger.sqlite")
    with con:
        for table in ("samples", "answers", "decided", "rounds"):
            con.execute(f"DELETE FROM {table} WHERE round >= 3")
        con.execute("DELETE FROM meta WHERE key = 'finished'")
    assert con.execute("SELECT COUNT(*) FROM answers WHERE step NOT IN "
                       "(SELECT step FROM decided)").fetchone()[0] > 0
    con.close()
    return base


def copy(runs, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(runs / name, dst)
    return dst


def sql(run, statement, args=()):
    con = sqlite3.connect(run / "ledger.sqlite")
    with con:
        n = con.execute(statement, args).rowcount
    con.close()
    assert n >= 1, statement


def refused(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "altered" in lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


def test_an_untouched_ledger_verifies(runs, tmp_path):
    r = run_sub("report", copy(runs, "done", tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)["ledger"]
    assert v["verified"] is True and v["rounds"] > 3 and len(v["head"]) == 64
    r = run_sub("report", tmp_path / "done")
    assert "ledger     verifies" in r.stdout


def verdict(run):
    led = Ledger.read(run)
    try:
        return led.verify()
    finally:
        led.close()


def test_a_stopped_run_resumes_to_a_verifying_ledger_equal_to_the_whole(runs, tmp_path):
    half = copy(runs, "half", tmp_path)
    v = verdict(half)
    assert v.ok is True and v.rounds == 3
    r = sim_solve(*ARGS, "--run-dir", half, "--resume", "--json")
    assert r.returncode in (0, 1), r.stderr
    told = json.loads(r.stdout)["ledger"]
    assert told["verified"] is True and told["checked"] == "as written"
    # timings are not in the chain: the same votes give the same head digest
    whole, resumed = verdict(runs / "done"), verdict(half)
    assert (resumed.rounds, resumed.head) == (whole.rounds, whole.head)
    # what the solve's report said of the chain (the 3 rounds re-read at the resume, then
    # the rounds it wrote) is what reading the file back finds
    assert (told["rounds"], told["head"]) == (resumed.rounds, resumed.head)
    assert resumed.checked == "re-read"


def one_answer(run, decided: bool):
    """(step, epoch, id, key) of an answer of a decided step's winner, or of an undecided
    step's first answer."""
    con = sqlite3.connect(run / "ledger.sqlite")
    if decided:
        row = con.execute("SELECT a.step, a.epoch, a.id, a.key FROM decided d JOIN answers a "
                          "ON a.step = d.step AND a.epoch = d.epoch AND a.id = d.answer "
                          "ORDER BY d.step DESC LIMIT 1").fetchone()
    else:
        row = con.execute("SELECT step, epoch, id, key FROM answers WHERE step NOT IN "
                          "(SELECT step FROM decided) ORDER BY step LIMIT 1").fetchone()
    con.close()
    assert row is not None
    return row


def other_key(key):
    """Another well-formed Hanoi vote key (the move's disk changed)."""
    move, _, state = key.partition("|")
    d, a, b = move.split(",")
    return f"{int(d) % 8 + 1},{a},{b}|{state}"


EDITS = {
    "undecided vote key": lambda run: sql(
        run, "UPDATE answers SET key = ? WHERE step = ? AND epoch = ? AND id = ?",
        (other_key(one_answer(run, False)[3]), *one_answer(run, False)[:3])),
    "decided winning key": lambda run: sql(
        run, "UPDATE answers SET key = ? WHERE step = ? AND epoch = ? AND id = ?",
        (other_key(one_answer(run, True)[3]), *one_answer(run, True)[:3])),
    "decided winner id": lambda run: sql(
        run, "UPDATE decided SET answer = answer + 1 WHERE step = (SELECT MAX(step) FROM "
        "decided)"),
    "a vote moved": lambda run: sql(
        run, "UPDATE samples SET answer = NULL, flag = 'parse' WHERE (step, idx) = "
        "(SELECT step, idx FROM samples WHERE answer IS NOT NULL "
        "ORDER BY step DESC LIMIT 1)"),
    "a sample deleted": lambda run: sql(
        run, "DELETE FROM samples WHERE (step, idx) = (SELECT step, MAX(idx) FROM samples "
        "WHERE step = (SELECT MAX(step) FROM samples))"),
    "a sample inserted": lambda run: sql(
        run, "INSERT INTO samples SELECT step, idx + 1000, epoch, round, seed + 1000, "
        "temperature, answer, flag, detail, tokens_in, tokens_out, tokens_reasoning, "
        "latency_ms, text, source FROM samples WHERE (step, idx) = (SELECT step, idx FROM samples "
        "WHERE answer IS NOT NULL ORDER BY step DESC LIMIT 1)"),
    "a round deleted": lambda run: sql(run, "DELETE FROM rounds WHERE round = 1"),
    "the configuration": lambda run: sql(
        run, "UPDATE meta SET value = replace(value, '\"k\": 3', '\"k\": 2') "
        "WHERE key = 'config'"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_ledger_is_refused_by_resume_and_report(runs, tmp_path, edit):
    run = copy(runs, "half", tmp_path)
    EDITS[edit](run)
    before = (run / "ledger.sqlite").read_bytes()
    v = verdict(run)
    assert v.ok is False and v.round is not None and v.problem
    refused(run_sub("report", run), f"round {v.round}")
    if edit != "the configuration":  # that one is refused as another run's options
        refused(sim_solve(*ARGS, "--run-dir", run, "--resume"), f"round {v.round}")
    assert (run / "ledger.sqlite").read_bytes() == before  # left untouched


def test_a_ledger_from_before_digests_is_reported_as_unverifiable(runs, tmp_path):
    run = copy(runs, "done", tmp_path)
    sql(run, "UPDATE rounds SET digest = NULL")
    v = verdict(run)
    assert v.ok is None and v.unverified > 0
    r = run_sub("report", run)
    assert r.returncode == 0 and "not verifiable" in r.stdout


# ------------------------------------------------------------------ maker-local verify
def run_verify(run):
    import argparse
    import contextlib
    import io
    from maker_local.commands import verify as command
    p = argparse.ArgumentParser()
    command.add_cli_args(p)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = command.main(p.parse_args([str(run), "--json"]))
    return code, json.loads(out.getvalue())


def test_verify_passes_an_untouched_run_and_a_stopped_one(runs, tmp_path):
    for name in ("done", "half"):
        code, r = run_verify(copy(runs, name, tmp_path))
        assert code == 0 and r["ok"], r
        assert r["chain"]["verified"] is True and r["decisions"]["problems"] == 0
        assert r["errors"]["rederived"] == r["errors"]["recorded"]
    assert r["decisions"]["undecided_checked"] > 0  # the stopped run has undecided steps


@pytest.mark.parametrize("edit", list(EDITS))
def test_verify_names_the_first_step_an_edit_affects(runs, tmp_path, edit):
    run = copy(runs, "half", tmp_path)
    step = {"decided winning key": lambda: one_answer(run, True)[0],
            "decided winner id": lambda: one_answer(run, True)[0]}.get(edit, lambda: None)()
    EDITS[edit](run)
    code, r = run_verify(run)
    assert code == 1 and r["ok"] is False and r["first_step"] is not None
    if step is not None:  # a decision replayed from its votes points at the very step
        assert r["first_step"] == step
        assert any(p["step"] == step for p in r["decisions"]["listed"] + r["inputs"]["listed"])


def test_verify_rederives_decisions_even_when_the_chain_was_forged(runs, tmp_path):
    """Someone who edits a winning key and recomputes every digest passes the chain; the
    replayed votes and the re-derived inputs still name the step."""
    from maker_local.core.records import AnswerRow, DecisionRow, SampleRow
    from maker_local.store import integrity
    run = copy(runs, "done", tmp_path)
    step, epoch, aid, key = one_answer(run, True)
    sql(run, "UPDATE answers SET key = ? WHERE step = ? AND epoch = ? AND id = ?",
        (other_key(key), step, epoch, aid))
    con = sqlite3.connect(run / "ledger.sqlite")  # forge: recompute the whole chain
    prev = integrity.genesis(con.execute("SELECT value FROM meta WHERE key='config'"
                                         ).fetchone()[0])
    for rnd, *rest in con.execute("SELECT round, started, finished, requests, samples, "
                                  "decided FROM rounds ORDER BY round").fetchall():
        s = con.execute(f"SELECT {integrity.SAMPLE_COLS}, latency_ms FROM samples "
                        "WHERE round = ? ORDER BY step, idx", (rnd,)).fetchall()
        s = [SampleRow(*r[:12], r[13], r[12]) for r in s]  # latency back in its column
        a = con.execute(f"SELECT {integrity.ANSWER_COLS} FROM answers WHERE round = ? "
                        "ORDER BY step, epoch, id", (rnd,)).fetchall()
        d = con.execute(f"SELECT {integrity.DECIDED_COLS} FROM decided WHERE round = ? "
                        "ORDER BY step", (rnd,)).fetchall()
        prev = integrity.round_digest(prev, (rnd, *rest), s, [AnswerRow(*r) for r in a],
                                      [DecisionRow(*r) for r in d])
        con.execute("UPDATE rounds SET digest = ? WHERE round = ?", (prev, rnd))
    con.commit()
    con.close()
    code, r = run_verify(run)
    assert r["chain"]["verified"] is True  # the forgery passes the chain ...
    assert code == 1 and r["first_step"] == step  # ... not the replay
