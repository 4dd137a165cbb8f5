"""Shared pieces of the hanoi-step model (and its think variant, models/hanoi-think): tokenizer,
chat template, model config, data, the teacher-forced scorer and the export to a Hugging Face
folder.

Used by the scripts under models/hanoi-step/ and models/hanoi-think/, and by
maker_local.recipes.mul (mul-step reuses this tokenizer). torch, transformers and tokenizers are
imported inside the functions that need them, so importing this module stays light.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from ..tasks.hanoi import HanoiAnswer, HanoiInput, apply_move, move_at, state_at, strategy_move
from ..tasks.hanoi_compact import LABELS, answer_compact, render_compact

MIN_DISKS, MAX_DISKS = 3, 20

# ------------------------------------------------------------------------------ tokenizer
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
UNK, BOS, EOS, PAD = 0, 1, 2, 3
SEP = "\n"  # the generation prompt: ends every prompt, the answer follows
CHARS = [SEP] + list("0123456789") + list("=;-") + list("abcdefghijklmnopqrstuvwxyz")
VOCAB_SIZE = 48  # len(SPECIALS) + len(CHARS) = 44, padded to a multiple of 8 with unused tokens
EXTRAS = [f"<extra_{i}>" for i in range(VOCAB_SIZE - len(SPECIALS) - len(CHARS))]
TOKENS = SPECIALS + CHARS + EXTRAS
STOI = {t: i for i, t in enumerate(TOKENS)}
assert len(TOKENS) == VOCAB_SIZE

# The reasoning variant (models/hanoi-think): the first two unused ids become <think> and
# </think>, added tokens that are NOT special (as in Qwen3 and DeepSeek-R1: they stay in the
# decoded text, where vLLM's reasoning parsers look for them), everything else unchanged.
THINK, END_THINK = len(SPECIALS) + len(CHARS), len(SPECIALS) + len(CHARS) + 1
THINK_TOKENS = ["<think>", "</think>"]
VARIANTS = ("step", "think")


def tokens(variant: str = "step") -> list[str]:
    if variant == "think":
        return TOKENS[:THINK] + THINK_TOKENS + TOKENS[END_THINK + 1:]
    return TOKENS

# One user message (system messages are ignored) -> "<s>" + content, then "\n" as the
# generation prompt. Exactly the training prompt format.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ message['content'] | trim }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '\\n' + message['content'] | trim + eos_token }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\n' }}{% endif %}"
)


def _byte_char(c: str) -> str:
    """GPT-2 byte-level stand-in of a one-byte character ('\n' -> 'Ċ'; printable ASCII is
    itself)."""
    from tokenizers.pre_tokenizers import ByteLevel
    (piece, _), = ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(c)
    return piece


def build_tokenizer(variant: str = "step"):
    """Char-level tokenizer, built offline: byte-level BPE with no merges over only the format's
    characters, so one token per character with the same ids as TOKENS (xgrammar,
    outlines_core and llguidance all read byte-level vocabularies). variant "think" adds
    <think> and </think> as (non-special) added tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    vocab = {(_byte_char(t) if t in CHARS else t): i for i, t in enumerate(tokens(variant))}
    assert len(vocab) == VOCAB_SIZE
    tok = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    if variant == "think":
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", BOS)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", model_max_length=192 if variant == "think" else 160, padding_side="left",
        clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def encode(text: str) -> list[int]:
    return [STOI[c] for c in text]


def decode(ids) -> str:
    out = []
    for i in ids:
        i = int(i)
        if i == EOS:
            break
        if i >= len(SPECIALS) and i < len(SPECIALS) + len(CHARS):
            out.append(TOKENS[i])
        elif i in (THINK, END_THINK):
            out.append(THINK_TOKENS[i - THINK])
    return "".join(out)


def prompt_ids(x: HanoiInput) -> list[int]:
    """<s> + compact prompt + generation prompt; what the chat template renders."""
    return [BOS] + encode(render_compact(x)) + [STOI[SEP]]


def answer_ids(a: HanoiAnswer) -> list[int]:
    return encode(answer_compact(a)) + [EOS]


def thought(x: HanoiInput) -> str:
    """The think variant's derivation of the paper's strategy, in the format's characters.

    After a move of another disk (or at the start) disk 1 moves on in its fixed direction:
    'p=<previous mover>;a=<disk 1's peg>;d=<1 or 2: the direction>'. After a move of disk 1 the
    mover is the smallest disk not on disk 1's peg, found by scanning the disks upward from
    disk 2: 'p=a;a=<peg>;b0c0d1;t=<its target peg>' lists each scanned disk with its peg, so
    the thought is as long as the search (1 to n - 1 disks): its length varies with the state."""
    n, state, prev = x.disks, x.state, x.prev_move
    peg = [0] * (n + 1)
    for p, disks in enumerate(state):
        for d in disks:
            peg[d] = p
    mv = strategy_move(n, state, prev)
    if prev is None or prev[0] != 1:
        return f"p={'-' if prev is None else LABELS[prev[0] - 1]};a={peg[1]};d={(mv[2] - mv[1]) % 3}"
    scan = []
    for d in range(2, n + 1):
        scan.append(f"{LABELS[d - 1]}{peg[d]}")
        if peg[d] != peg[1]:
            break
    return f"p=a;a={peg[1]};{''.join(scan)};t={mv[2]}"


def think_answer_ids(x: HanoiInput) -> list[int]:
    """<think> derivation </think> answer </s>: the think variant's target."""
    return [THINK] + encode(thought(x)) + [END_THINK] + answer_ids(step_answer(x))


# ------------------------------------------------------------------------------ model
def model_config(hidden: int = 128, layers: int = 4, intermediate: int | None = None,
                 positions: int = 160):
    from transformers import LlamaConfig
    return LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=intermediate or 4 * hidden,
        num_hidden_layers=layers, num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64, head_dim=64, max_position_embeddings=positions,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, hidden_act="silu",
        attention_bias=False, mlp_bias=False, initializer_range=0.02)


# ------------------------------------------------------------------------------ data
def step_input(n: int, i: int) -> HanoiInput:
    return HanoiInput(n, state_at(n, i), move_at(n, i - 1) if i > 0 else None)


def step_answer(x: HanoiInput) -> HanoiAnswer:
    mv = strategy_move(x.disks, x.state, x.prev_move)
    return HanoiAnswer(mv, apply_move(x.state, mv))


def sample_disks(rng: random.Random) -> int:
    """3..20, weight proportional to n (larger counts are longer and harder)."""
    ns = list(range(MIN_DISKS, MAX_DISKS + 1))
    return rng.choices(ns, weights=ns)[0]


def sample_step(rng: random.Random, n: int) -> int:
    """A step of an n-disk run: uniform (half), by uniform moving disk (most of the rest), or
    near the ends of the run."""
    last = 2**n - 2
    u = rng.random()
    if u < 0.5:
        return rng.randint(0, last)
    if u < 0.95:  # step whose move moves disk d: i + 1 = (2m + 1) * 2^(d - 1)
        d = rng.randint(1, n)
        m = rng.randint(0, 2 ** (n - d) - 1)
        return (2 * m + 1) * 2 ** (d - 1) - 1
    k = rng.randint(0, min(7, last))
    return k if rng.random() < 0.5 else last - k


def mover_step(rng: random.Random, n: int, d: int) -> int:
    """A random step of an n-disk run whose move moves disk d: i + 1 = (2m + 1) * 2^(d - 1)."""
    m = rng.randint(0, 2 ** (n - d) - 1)
    return (2 * m + 1) * 2 ** (d - 1) - 1


def sample_class_step(rng: random.Random, min_n: int, min_d: int,
                      neighbours: float = 0.0) -> tuple[int, int]:
    """(n, step) from the large-disk corner: n uniform in min_n..20, then the moving disk d
    uniform in min(min_d, n)..n (the (n, d) classes that uniform steps almost never show);
    with probability `neighbours`, a step 1 or 2 before or after such a move instead (the
    disk-1 moves whose previous move, or whose state, only a large move makes: e.g. the step
    after the largest disk's only move, whose previous move names that disk)."""
    n = rng.randint(min_n, MAX_DISKS)
    d = rng.randint(min(min_d, n), n)
    i = mover_step(rng, n, d)
    if neighbours and rng.random() < neighbours:
        i = min(max(0, i + rng.choice((-2, -1, 1, 2))), 2**n - 2)
    return n, i


def example(n: int, i: int, variant: str = "step") -> tuple[list[int], list[int]]:
    x = step_input(n, i)
    if variant == "think":
        return prompt_ids(x), think_answer_ids(x)
    return prompt_ids(x), answer_ids(step_answer(x))


def disk_list(spec: str) -> list[int]:
    """'3-20' or '10,20' or '3-5,20' -> the disk counts."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


# ------------------------------------------------------------------------------ scoring
def measure(model, torch, n: int, steps: list[int], temperature: float, batch: int = 256,
            variant: str = "step"):
    """(p_i list, greedy-right list) for these steps of an n-disk run: p_i is the
    teacher-forced probability that one sample at `temperature` is exactly right (for the think
    variant: thought and answer), greedy-right that the argmax is right at every target
    token."""
    ps, greedy = [], []
    for b in range(0, len(steps), batch):
        ex = [example(n, i, variant) for i in steps[b:b + batch]]
        seqs = [p + q for p, q in ex]
        w = max(map(len, seqs))
        ids = torch.full((len(seqs), w), PAD)
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = torch.tensor(s)
        with torch.no_grad():
            lg = model(input_ids=ids).logits.float()
        for r, (p, q) in enumerate(ex):
            lo = lg[r, len(p) - 1:len(p) + len(q) - 1]
            t = torch.tensor(q)
            lp = torch.log_softmax(lo / temperature, -1)
            ps.append(float(lp.gather(1, t[:, None]).sum().exp()))
            greedy.append(bool((lo.argmax(-1) == t).all()))
    return ps, greedy


# ------------------------------------------------------------------------------ export
def export(ckpt: str | Path, out: str | Path, variant: str = "") -> dict:
    """A training checkpoint (train.py's last.pt) to a Hugging Face folder `out`: config.json
    (with the keys older transformers / vLLM read), float32 model.safetensors,
    generation_config.json, the char tokenizer with the chat template, special_tokens_map.json
    and chat_template.jinja; writes train_info.json next to the folder and returns it. variant
    "" means the one the checkpoint was trained as."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    st = torch.load(ckpt, map_location="cpu", weights_only=False)
    variant = variant or st["args"].get("variant", "step")
    cfg = LlamaConfig.from_dict(st["config"])
    cfg.architectures = ["LlamaForCausalLM"]
    model = LlamaForCausalLM(cfg)
    model.load_state_dict(st["model"])
    model = model.float().eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.generation_config = GenerationConfig(
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, do_sample=True,
        temperature=1.0, top_k=0, top_p=1.0,
        max_new_tokens=128 if variant == "think" else 64)
    model.save_pretrained(out, safe_serialization=True)

    # Keys that older transformers / vLLM releases read (newer ones write rope_parameters).
    cj_path = out / "config.json"
    cj = json.loads(cj_path.read_text())
    cj.setdefault("rope_theta", float(cfg.to_dict().get("rope_theta", 10000.0)
                                      if "rope_theta" in cfg.to_dict() else 10000.0))
    cj.setdefault("torch_dtype", "float32")
    cj_path.write_text(json.dumps(cj, indent=2) + "\n")

    tok = build_tokenizer(variant)
    tok.save_pretrained(out)
    # Older transformers (and vLLM) read the chat template from tokenizer_config.json and
    # may not know newer tokenizer class names: make both explicit.
    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["chat_template"] = CHAT_TEMPLATE
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    tc_path.write_text(json.dumps(tc, indent=2, ensure_ascii=False) + "\n")
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    stm = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (out / "special_tokens_map.json").write_text(json.dumps(stm, indent=2) + "\n")
    info = {"step": st["step"], "train_minutes": round(st["elapsed"] / 60, 1),
            "params": sum(p.numel() for p in model.parameters()), "args": st["args"]}
    (out.parent / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
