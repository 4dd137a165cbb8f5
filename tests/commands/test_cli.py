import errno
import hashlib
import json
import os
import shutil
import sqlite3

import pytest

from conftest import ROOT, run_sub, sim_solve


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("error,k", [("0.0022", 3), ("0.0358", 6), ("0.3571", 29),
                                     ("0.2342", 15)])
def test_plan_reproduces_the_paper_table(cli, error, k):
    code, out, _ = cli("plan", "--steps", "1048575", "--target", "0.95", "--error", error)
    assert code == 0
    assert out.splitlines()[0].split() == ["k_min", str(k)]
    code, out, _ = cli("plan", "--error", error, "--json")
    assert json.loads(out)["k"] == k


def test_plan_cost(cli):
    code, out, _ = cli("plan", "--error", "0.0022", "--valid", "0.97", "--tokens-out", "538",
                       "--tokens-in", "1000", "--price-out", "1.6", "--price-in", "0.4",
                       "--json")
    r = json.loads(out)
    assert r["cost"] == pytest.approx(r["samples_total"] * (538 * 1.6 + 1000 * 0.4) / 1e6)


def test_solve_and_report_agree_with_the_ledger(cli, tmp_path):
    run = tmp_path / "run"
    code, out, err = cli("solve", "--backend", "sim", "--disks", "9", "--sim-error", "0.03",
                         "--sim-valid", "0.9",
                         "--run-dir", run, "--quiet", "--json")
    assert code == 0, err
    r = json.loads(out)
    code, out, _ = cli("report", run, "--json")
    assert code == 0
    rep = json.loads(out)
    assert rep == r | {"wall_seconds": rep["wall_seconds"], "ledger": rep["ledger"]}
    # the solve's chain as written is the chain report reads back
    assert r["ledger"]["checked"] == "as written" and rep["ledger"]["checked"] == "re-read"
    assert r["ledger"] | {"checked": "re-read"} == rep["ledger"]
    con = sqlite3.connect(run / "ledger.sqlite")

    def q(sql):
        return con.execute(sql).fetchone()[0]
    assert rep["steps"]["total"] == 511 == rep["steps"]["decided"]
    assert rep["steps"]["decided"] == q("SELECT COUNT(*) FROM decided")
    assert rep["steps"]["errors"] == q("SELECT COUNT(*) FROM decided WHERE correct = 0") == 0
    assert rep["samples"]["total"] == q("SELECT COUNT(*) FROM samples")
    assert rep["samples"]["valid"] == q("SELECT COUNT(*) FROM samples WHERE flag IS NULL")
    for reason, n in rep["samples"]["flagged_by_reason"].items():
        assert n == q(f"SELECT COUNT(*) FROM samples WHERE flag = '{reason}'")
    assert rep["samples"]["flagged_by_reason"]["parse"] > 0
    assert rep["votes_per_step"]["max"] == q("SELECT MAX(votes) FROM decided")
    assert rep["votes_per_step"]["mean"] == pytest.approx(
        q("SELECT AVG(votes) FROM decided"), abs=1e-4)
    assert rep["steps"]["more_than_k_votes"] == q("SELECT COUNT(*) FROM decided WHERE votes > 3")
    assert rep["rounds"]["max_per_step"] == q("SELECT MAX(rounds) FROM decided")
    assert rep["rounds"]["undecided_after"][0] == 511
    assert rep["rounds"]["undecided_after"][1] == q("SELECT COUNT(*) FROM decided WHERE rounds > 1")
    assert rep["tokens"]["out"] == q("SELECT SUM(tokens_out) FROM samples")
    # votes of a decided step = its valid samples in its final epoch
    assert q("SELECT SUM(votes) FROM decided") == q(
        "SELECT COUNT(*) FROM samples s JOIN decided d ON d.step = s.step AND d.epoch = s.epoch "
        "WHERE s.flag IS NULL")
    # raw text: every flagged and every losing sample keeps it
    assert q("SELECT COUNT(*) FROM samples WHERE flag IS NOT NULL AND text IS NULL") == 0
    assert q("SELECT COUNT(*) FROM samples s JOIN decided d ON d.step = s.step "
             "WHERE s.answer != d.answer AND s.text IS NULL") == 0
    for png in ("undecided.png", "votes.png"):
        assert (run / png).read_bytes()[:4] == b"\x89PNG"


def one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert lines[0].startswith("maker-local: error:")
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("args,needles", [
    (["--disks", "0"], ["--disks must be an integer from 1 to 30"]),
    (["--disks", "64"], ["--disks must be"]),
    (["--k", "0"], ["argument --k: must be at least 1"]),
    (["--k", "three"], ["positive integer or 'auto'"]),
    (["--backend", "simm"], ["unknown backend 'simm'", "did you mean 'sim'"]),
    (["--schedule", "round"], ["unknown schedule", "did you mean 'rounds'"]),
    (["--task", "chess"], ["unknown task"]),
    (["--sim-error", "1.5"], ["argument --sim-error: must be in [0, 1) (got 1.5)"]),
    (["--sim-error", "-0.1"], ["argument --sim-error: must be in [0, 1)"]),
    (["--sim-valid", "0"], ["argument --sim-valid: must be in (0, 1]"]),
    (["--sim-spread", "-1"], ["argument --sim-spread: must be in [0, 1] (got -1)"]),
    (["--sim-spread", "1.5"], ["argument --sim-spread: must be in [0, 1]"]),
    (["--sim-concentration", "-1"], ["argument --sim-concentration: must be in [0, 1]"]),
    (["--sim-concentration", "nan"], ["argument --sim-concentration: must be a finite"]),
    (["--sim-wrong", "0"], ["argument --sim-wrong: must be at least 1 (got 0)"]),
    (["--sim-correlation", "1"], ["argument --sim-correlation: must be in [0, 1)"]),
    (["--seed", "-1"], ["--seed must be"]),
    (["--disks", "x"], ["invalid int value"]),
])
def test_bad_input_is_one_clear_line(tmp_path, args, needles):
    one_line_error(sim_solve("--run-dir", tmp_path / "r", *args), *needles)
    assert not (tmp_path / "r" / "ledger.sqlite").exists()


def test_existing_ledgers_are_never_harmed(tmp_path):
    run = tmp_path / "run"
    assert sim_solve("--disks", "5", "--run-dir", run, "--quiet").returncode == 0
    ledger = run / "ledger.sqlite"
    before = sha(ledger)
    # the same run dir without --resume
    one_line_error(sim_solve("--disks", "5", "--run-dir", run), "--resume")
    # another run's options
    one_line_error(sim_solve("--disks", "6", "--run-dir", run, "--resume"),
                   "holds another run", "disks")
    one_line_error(sim_solve("--disks", "5", "--k", "4", "--run-dir", run, "--resume"),
                   "holds another run")
    assert sha(ledger) == before
    # a truncated ledger file
    data = ledger.read_bytes()
    for size in (len(data) // 2, 100, 0):
        ledger.write_bytes(data[:size])
        cut = sha(ledger)
        one_line_error(sim_solve("--disks", "5", "--run-dir", run, "--resume"),
                       "left untouched")
        one_line_error(run_sub("report", run), "left untouched")
        assert sha(ledger) == cut
    # not a database at all
    ledger.write_bytes(b"hello" * 1000)
    one_line_error(sim_solve("--disks", "5", "--run-dir", run, "--resume"), "ledger")
    one_line_error(run_sub("report", tmp_path / "nothing"), "no ledger")


def test_k_auto_uses_the_models_accuracy(tmp_path):
    r = sim_solve("--disks", "6", "--k", "auto", "--sim-error", "0.0358",
                "--run-dir", tmp_path / "r", "--quiet", "--json")
    assert r.returncode == 0, r.stderr
    assert "k auto: k=" in r.stderr
    assert json.loads(r.stdout)["k"] == 3  # 63 steps at p = 0.9642, t = 0.95


def test_an_easy_run_has_no_hardest_steps_and_plots_whole_rounds(cli, tmp_path):
    run = tmp_path / "easy"
    code, out, err = cli("solve", "--backend", "sim", "--disks", "4", "--sim-error", "0",
                         "--sim-valid", "1", "--run-dir", run, "--quiet", "--json")
    assert code == 0, err
    assert json.loads(out)["hardest_steps"] == []
    code, out, err = cli("solve", "--backend", "sim", "--disks", "8", "--sim-error", "0.1",
                         "--run-dir", tmp_path / "hard", "--quiet", "--json")
    hard = json.loads(out)["hardest_steps"]
    assert hard and all(h["votes"] > 3 or len(h["answers"]) > 1 for h in hard)


@pytest.mark.parametrize("command", ["solve", "plan", "report", "calibrate", "serve", "bench"])
def test_every_help_shows_defaults(cli, command):
    with pytest.raises(SystemExit):
        cli(command, "--help")
    # checked on the parser itself: every option with a default says it
    from maker_local.cli import make_parser
    sub = make_parser(command)._subparsers._group_actions[0].choices[command]
    text = sub.format_help()
    for action in sub._actions:
        if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
            assert action.help and "default" in sub._get_formatter()._get_help_string(
                action).lower(), (command, action.option_strings)
    assert "(default: " in text


def test_k_auto_from_a_calibration_takes_the_low_end_of_its_interval(cli, tmp_path):
    """p = 1.0000 measured on a few hundred samples is not k = 1: solve and plan both use
    the interval's low end, as the model card path does."""
    cal = tmp_path / "c.json"
    code, _, err = cli("calibrate", "--backend", "sim", "--sim-error", "0", "--sim-valid", "1",
                       "--disks", "4", "--steps-per-size", "15", "--samples", "4",
                       "--out", cal)
    assert code == 0, err
    data = json.loads(cal.read_text())
    assert data["p"] == 1.0 and data["p_low"] < 0.99
    code, out, err = cli("plan", "--calibration", cal, "--json")
    assert code == 0 and json.loads(out)["k"] > 1
    assert "low end of the 95% interval around the measured p=1.0000" in err
    code, out, err = cli("solve", "--backend", "sim", "--disks", "4", "--k", "auto",
                         "--calibration", cal, "--run-dir", tmp_path / "r", "--quiet", "--json")
    assert code == 0, err
    assert json.loads(out)["k"] > 1 and "low end of the 95% interval" in err


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """`maker-local report RUN --json | head -c 0`: the pipe closes before the report is
    written out; no traceback, the exit status of a program killed by SIGPIPE."""
    import subprocess
    import sys
    from conftest import ROOT, sim_solve
    run = tmp_path / "run"
    assert sim_solve("--disks", "9", "--run-dir", run, "--quiet").returncode == 0
    p = subprocess.Popen([sys.executable, "-m", "maker_local.cli", "report", str(run),
                          "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    p.stdout.close()  # the reader goes away before the report is written out
    err = p.stderr.read().decode()
    assert p.wait(60) == 141 and "Traceback" not in err, err


# ----------------------------------------------------------------- where a run cannot go
def test_a_run_dir_where_nothing_can_be_made_says_why_not_a_full_disk(tmp_path):
    """/proc holds no folders (and reports a size of 0, which once read as a full disk)."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    r = sim_solve("--disks", "3", "--run-dir", "/proc/maker-local-nope")
    one_line_error(r, "--run-dir /proc/maker-local-nope:", "/proc",
                   "choose a writable place, e.g. --run-dir runs/maker-local-nope")
    assert "full" not in r.stderr


@pytest.mark.parametrize("code,needle", [
    (errno.EROFS, "is on a read-only file system [EROFS]"),
    (errno.EACCES, "is read-only to you (permission denied [EACCES]"),
    (errno.ENOSPC, "is full [ENOSPC]"),
    (errno.ENOENT, "the run dir cannot be created in"),
    (errno.EPERM, "(Operation not permitted [EPERM])"),
])
def test_run_dir_faults_name_the_file_systems_reason(tmp_path, monkeypatch, code, needle):
    from maker_local.commands import checks
    from maker_local.core.errors import UsageError

    def refuse(**kw):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(checks.tempfile, "mkdtemp", refuse)
    with pytest.raises(UsageError) as e:
        checks.check_run_dir(tmp_path / "run", resume=False)
    assert needle in str(e.value) and "e.g. --run-dir runs/run" in str(e.value), e.value
    with pytest.raises(UsageError) as e:
        checks.check_out_file(tmp_path / "out" / "cal.json")
    assert str(e.value).startswith(f"--out {tmp_path / 'out' / 'cal.json'}: ")
    assert "e.g. --out cal.json" in str(e.value)


def test_the_free_space_check_leaves_file_systems_without_a_size_alone(tmp_path, monkeypatch):
    from maker_local.commands import checks
    from maker_local.core.errors import UsageError
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda p: usage._replace(free=0))
    with pytest.raises(UsageError, match="is full"):
        checks.check_run_dir(tmp_path / "run", resume=False)
    monkeypatch.setattr(checks.shutil, "disk_usage", lambda p: usage._replace(total=0, free=0))
    checks.check_run_dir(tmp_path / "run", resume=False)  # ramfs and friends: no verdict
    assert list(tmp_path.iterdir()) == []  # the probe left nothing behind


# ------------------------------------------------------------ --model without --profile
BUNDLED = ROOT / "models" / "hanoi-step" / "model"
needs_bundled = pytest.mark.skipif(not (BUNDLED / "config.json").is_file(),
                                   reason="the bundled hanoi-step model is not here")


def dry(cli, *args):
    code, out, err = cli("solve", "--disks", "3", "--dry-run", *map(str, args))
    return code, (json.loads(out) if code == 0 else None), err


@needs_bundled
@pytest.mark.parametrize("given", [BUNDLED, BUNDLED.parent])
def test_a_bundled_model_without_its_profile_takes_the_profile(cli, tmp_path, given):
    pytest.importorskip("transformers")
    code, out, err = dry(cli, "--backend", "hf", "--model", given, "--run-dir", tmp_path / "r")
    assert code == 0, err
    assert out["profile"] == "hanoi-step" and out["style"] == "compact"
    assert out["model"] == str(BUNDLED) and out["max_tokens"] == 64
    assert f"--model {given} " in err and "--profile hanoi-step" in err
    # a flag still wins, and a style whose prompts do not fit is refused at once
    code, _, err = dry(cli, "--backend", "hf", "--model", given, "--style", "paper",
                       "--run-dir", tmp_path / "r")
    assert code == 2 and "holds 160 positions" in err and "pass --style compact" in err


@needs_bundled
def test_a_model_whose_context_cannot_hold_the_prompt_is_refused_at_once(cli, tmp_path):
    """A copy of the bundled model (160 positions) is no profile's: the paper's prompts
    (~700 tokens) cannot fit. Refused before an engine or a run dir exists, with what to
    pass; a prompt that fits with less room than --max-tokens is a note (the engine stops
    the answer at the end of the context: a length flag, as at the cap)."""
    pytest.importorskip("transformers")
    model = tmp_path / "mine"
    shutil.copytree(BUNDLED, model)
    run = tmp_path / "r"
    for backend in ("vllm", "hf"):
        code, _, err = dry(cli, "--backend", backend, "--model", model, "--run-dir", run)
        assert code == 2, err
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"maker-local: error: --model {model} holds 160 positions "
                               f"({model / 'config.json'}), but prompts in style paper take "
                               "up to "), line
        assert "pass --style compact --max-tokens 1" in line and "or less" in line
        assert "write a profile for it" in line
    code, _, err = dry(cli, "--backend", "hf", "--model", model, "--max-tokens", "64",
                       "--run-dir", run)
    assert code == 2 and "tokens: pass --style compact;" in err
    code, _, err = dry(cli, "--backend", "hf", "--model", model, "--max-model-len", "16",
                       "--style", "compact", "--run-dir", run)
    assert code == 2 and "holds 16 positions (--max-model-len 16)" in err
    assert "choose a model with a longer context, or raise --max-model-len (the model holds " \
        "160)" in err
    code, out, err = dry(cli, "--backend", "hf", "--model", model, "--style", "compact",
                         "--run-dir", run)
    assert code == 0, err
    assert "note:" in err and "answers stop at 1" in err and "below --max-tokens 750" in err
    code, out, err = dry(cli, "--backend", "hf", "--model", model, "--style", "compact",
                         "--max-tokens", "64", "--run-dir", run)
    assert code == 0 and err == "", err
    assert out["profile"] is None and out["style"] == "compact"
    assert not run.exists()


def test_a_model_that_two_profiles_name_is_refused_with_both(cli, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    (folder / "m" / "model").mkdir(parents=True)
    for name, style in (("m-paper", "paper"), ("m-compact", "compact")):
        (folder / f"{name}.toml").write_text(
            f'model = "m/model"\nkind = "local"\napi = "chat"\nprompt_style = "{style}"\n'
            "max_tokens = 64\ntemperature_first = 0.0\ntemperature = 1.0\n")
    monkeypatch.setenv("MAKER_LOCAL_MODELS", str(folder))
    code, _, err = dry(cli, "--backend", "hf", "--model", folder / "m" / "model",
                       "--run-dir", tmp_path / "r")
    assert code == 2
    assert "is the model of profiles m-compact, m-paper" in err
    assert "pass --profile m-compact or --profile m-paper" in err
