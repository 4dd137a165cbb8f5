"""Shared pieces of the mul-step model: the step format, data, model config.

Used by the scripts under models/mul-step/. The tokenizer, chat template and export are the
hanoi-step ones, imported from maker_local.recipes.hanoi (its char vocabulary holds the digits,
'=', ';' and the letters this format uses). torch is passed in by the callers that need it.

Step (one multiply-accumulate of long multiplication): digits a, b (of A and B), c (the
accumulator digit at that position), k (the carry in); t = a*b + c + k (0..99);
answer d = t mod 10 and the carry out t div 10.

    prompt  a=7;b=8;c=5;k=3
    answer  d=4;k=6
"""
from __future__ import annotations

import itertools

from . import hanoi as H

BOS, EOS, PAD, SEP = H.BOS, H.EOS, H.PAD, H.SEP
VOCAB_SIZE = H.VOCAB_SIZE
CHAT_TEMPLATE = H.CHAT_TEMPLATE
build_tokenizer = H.build_tokenizer
encode, decode = H.encode, H.decode


def render(a: int, b: int, c: int, k: int) -> str:
    return f"a={a};b={b};c={c};k={k}"


def solve(a: int, b: int, c: int, k: int) -> tuple[int, int]:
    t = a * b + c + k
    return t % 10, t // 10


def answer(a: int, b: int, c: int, k: int) -> str:
    d, k2 = solve(a, b, c, k)
    return f"d={d};k={k2}"


def all_inputs() -> list[tuple[int, int, int, int]]:
    """The 10,000 inputs, in (a, b, c, k) lexicographic order."""
    return list(itertools.product(range(10), repeat=4))


def prompt_ids(x) -> list[int]:
    """<s> + prompt + generation prompt: what the chat template renders."""
    return [BOS] + encode(render(*x)) + [H.STOI[SEP]]


def answer_ids(x) -> list[int]:
    return encode(answer(*x)) + [EOS]


PROMPT_LEN = len(prompt_ids((0, 0, 0, 0)))  # 17
ANSWER_LEN = len(answer_ids((0, 0, 0, 0)))  # 8 (incl. </s>)


def model_config(hidden: int = 128, layers: int = 3, intermediate: int | None = None,
                 positions: int = 32, heads: int = 0):
    """hanoi-step's Llama config (head_dim 64, tied embeddings, vocab 48), smaller; with
    heads > 0, that many attention heads of head_dim 64 (heads x 64 may exceed hidden: the
    output projection maps them back), no GQA."""
    cfg = H.model_config(hidden, layers, intermediate, positions)
    if heads:
        cfg.num_attention_heads = cfg.num_key_value_heads = heads
        cfg.head_dim = 64
    return cfg


def batch_tensors(xs, torch):
    """(ids, answer start): every sequence has the same length (fixed format), no padding."""
    seqs = [prompt_ids(x) + answer_ids(x) for x in xs]
    return torch.tensor(seqs, dtype=torch.long), PROMPT_LEN


def answer_logprobs(model, ids, torch):
    """Per-sequence log-probability of the answer tokens (incl. </s>) at T=1, teacher-forced,
    and whether greedy decoding (argmax at every answer position) gives exactly the answer."""
    logits = model(input_ids=ids).logits[:, PROMPT_LEN - 1:-1].float()
    tgt = ids[:, PROMPT_LEN:]
    lp = torch.log_softmax(logits, -1).gather(2, tgt[..., None])[..., 0]
    return lp.sum(-1), (logits.argmax(-1) == tgt).all(-1)
