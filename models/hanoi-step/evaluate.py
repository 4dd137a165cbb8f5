"""Measure the hanoi-step model's per-sample accuracy p per disk count (3..20).

For each disk count n, `--steps` random steps of an n-disk run (uniform over 0..2^n-2, seeded
by --seed and n) are rendered through the tokenizer's chat template and answered by batched
generation (transformers, KV cache) at `--temperature` (and greedily with --greedy). A sample
counts as correct if it parses (parse_compact) and its vote key equals the task reference's.

Reported per n: p with a 95% Wilson interval, the valid (parse) rate, the exact expected p
(mean over the steps of the teacher-forced probability that a sample is exactly the right
answer, at the same temperature), and the share of steps whose exact p_i <= 0.5 (correlated
errors: voting cannot fix those); with --repeats R each step is also sampled R times and the
share of steps with at most R/2 correct samples is reported. k_min for a full 20-disk run
(s = 2^20 - 1 steps, target t) is computed from the 20-disk p.

    OMP_NUM_THREADS=1 PYTHONPATH=. python models/hanoi-step/evaluate.py \
        --steps 1000 --seed 7 --temperature 1.0 --greedy --repeats 5 \
        --out models/hanoi-step/card.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

from maker_local.core.stats import length_bins
from maker_local.recipes import hanoi as H
from maker_local.tasks.hanoi import Hanoi
from maker_local.tasks.hanoi_compact import parse_compact, render_compact

HERE = Path(__file__).resolve().parent


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def k_min(p: float, s: int = 2**20 - 1, t: float = 0.95) -> float:
    """Smallest k of first-to-ahead-by-k voting for a full-run success probability >= t."""
    if p >= 1.0:
        return 1
    if p <= 0.5:
        return math.inf
    return max(1, math.ceil(math.log(t ** (-1 / s) - 1) / math.log((1 - p) / p)))


def markdown_table(card: dict) -> str:
    """The card's table in Markdown (as pasted into README.md)."""
    rows = card["rows"]
    greedy = "greedy_p" in rows[0]
    reps = card.get("repeats", 1) > 1
    t = card["temperature"]
    head = (f"| n | p (T={t}) | 95% CI | valid | p exact | share p_i<=0.5 |"
            + (f" share <=R/2 of R={card['repeats']} |" if reps else "")
            + (" greedy p | greedy 95% CI |" if greedy else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = (f"| {r['disks']} | {r['p']:.4f} | [{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}] | "
                f"{r['valid_rate']:.4f} | {r['p_exact']:.4f} | "
                f"{r['share_steps_exact_pi_le_half']:.4f} |")
        if reps:
            line += f" {r['share_steps_pi_le_half']:.4f} |"
        if greedy:
            line += (f" {r['greedy_p']:.4f} | [{r['greedy_ci95'][0]:.4f}, "
                     f"{r['greedy_ci95'][1]:.4f}] |")
        lines.append(line)
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="per-sample accuracy of the hanoi-step model")
    ap.add_argument("--model", default=str(HERE / "model"))
    ap.add_argument("--steps", type=int, default=1000, help="random steps per disk count")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--greedy", action="store_true", help="also measure greedy decoding")
    ap.add_argument("--repeats", type=int, default=1, help="samples per step (correlation)")
    ap.add_argument("--disks", default="3-20", help="e.g. 3-20 or 4,10,20")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--target", type=float, default=0.95, help="t for k_min")
    ap.add_argument("--out", default=str(HERE / "card.json"))
    ap.add_argument("--variant", choices=H.VARIANTS, default="step",
                    help="think: the reasoning stand-in (answer parsed only after </think>; "
                         "thought and answer tokens and error by output length reported)")
    return ap.parse_args(argv)


def split_thought(text: str) -> tuple[str | None, str]:
    """(thought, answer) of a think-variant sample; thought None without </think> (such a
    sample is never parsed: invalid)."""
    head, sep, tail = text.partition("</think>")
    if not sep:
        return None, ""
    return head.removeprefix("<think>"), tail


def disk_list(spec: str) -> list[int]:
    if "-" in spec:
        lo, hi = spec.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(v) for v in spec.split(",")]


def main(argv=None) -> int:
    a = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    tok = AutoTokenizer.from_pretrained(a.model)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype))
    model = model.to(dev).eval()
    eos = tok.eos_token_id
    pad = tok.pad_token_id

    def prompts_for(xs):
        out = []
        for x in xs:
            msgs = [{"role": "user", "content": render_compact(x)}]
            ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            out.append(list(ids))
        return out

    def left_pad(seqs):
        w = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), w), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), w), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, w - len(s):] = torch.tensor(s)
            mask[r, w - len(s):] = 1
        return ids.to(dev), mask.to(dev)

    think = a.variant == "think"
    lengths: list[int] = []  # output tokens of each sampled (not greedy) text, in order
    pooled_lengths: list[int] = []  # ... and of every disk count, with
    pooled_ok: list[bool] = []  # whether each was right: error by length over the card

    @torch.no_grad()
    def generate(prompts, n, temperature, record=False):
        texts = []
        for b in range(0, len(prompts), a.batch):
            ids, mask = left_pad(prompts[b:b + a.batch])
            kw = dict(do_sample=False) if temperature == 0 else dict(
                do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
            cap = 4 * n + 30 if think else 2 * n + 12
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=cap,
                                 eos_token_id=eos, pad_token_id=pad, **kw)
            gen = out[:, ids.shape[1]:]
            texts += tok.batch_decode(gen, skip_special_tokens=True)
            if record:  # tokens up to and including eos
                for row in gen.tolist():
                    lengths.append(row.index(eos) + 1 if eos in row else len(row))
        return texts

    @torch.no_grad()
    def exact(prompts, answers, temps):
        """Teacher-forced: for each temperature, the probability of sampling exactly the
        answer (+eos); and whether greedy decoding produces it."""
        probs = {t: [] for t in temps}
        greedy_ok = []
        for b in range(0, len(prompts), a.batch):
            seqs = [p + q for p, q in zip(prompts[b:b + a.batch], answers[b:b + a.batch])]
            ids, mask = left_pad(seqs)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
            for r, q in enumerate(answers[b:b + a.batch]):
                L = len(q)
                lg = logits[r, -L - 1:-1]
                tgt = torch.tensor(q, device=dev)
                for t in temps:
                    lp = torch.log_softmax(lg / max(t, 1e-6), -1)
                    probs[t].append(float(lp.gather(1, tgt[:, None]).sum().exp()))
                greedy_ok.append(bool((lg.argmax(-1) == tgt).all()))
        return probs, greedy_ok

    t0 = time.time()
    rows = []
    for n in disk_list(a.disks):
        task = Hanoi(n)
        rng = random.Random(a.seed * 1000 + n)
        steps = [rng.randint(0, 2**n - 2) for _ in range(a.steps)]
        xs = [H.step_input(n, i) for i in steps]
        refs = [task.reference(x) for x in xs]
        prompts = prompts_for(xs)
        assert prompts[0] == H.prompt_ids(xs[0]), "chat template differs from training format"
        answers = ([H.think_answer_ids(x) for x in xs] if think
                   else [H.answer_ids(r.answer) for r in refs])
        row = {"disks": n, "size": n, "steps": a.steps}

        def score(texts):
            if think:
                texts = [t if th is not None else "</think> missing"
                         for th, t in map(split_thought, texts)]
            parsed = [parse_compact(t, n) for t in texts]
            valid = [hasattr(p, "key") for p in parsed]
            reps_refs = refs * (len(texts) // len(refs))
            ok = [v and p.key == r.key for v, p, r in zip(valid, parsed, reps_refs)]
            return ok, valid

        torch.manual_seed(a.seed * 1000 + n)
        reps = max(1, a.repeats)
        lengths.clear()
        texts = generate(prompts * reps, n, a.temperature, record=True)
        ok, valid = score(texts)
        if think:
            tt = [len(th) + 2 if th is not None else None for th, _ in map(split_thought, texts)]
            done = [v for v in tt if v is not None]
            row.update(thought_tokens_mean=sum(done) / max(1, len(done)),
                       thought_tokens_max=max(done, default=0),
                       no_end_of_thinking=sum(v is None for v in tt) / len(tt),
                       answer_tokens_mean=sum(L - v for L, v in zip(lengths, tt)
                                              if v is not None) / max(1, len(done)),
                       output_tokens_mean=sum(lengths) / len(lengths))
            pooled_lengths += lengths
            pooled_ok += ok
        k = sum(ok[:a.steps])
        row.update(p=k / a.steps, ci95=wilson(k, a.steps), correct=k,
                   valid_rate=sum(valid[:a.steps]) / a.steps)
        if reps > 1:
            per_step = [sum(ok[r * a.steps + j] for r in range(reps)) for j in range(a.steps)]
            row.update(repeats=reps, p_all_repeats=sum(ok) / len(ok),
                       valid_rate_all_repeats=sum(valid) / len(valid),
                       share_steps_pi_le_half=sum(c <= reps / 2 for c in per_step) / a.steps)
        temps = sorted({a.temperature, 0.5, 0.7, 1.0})
        allp, gok = exact(prompts, answers, temps)
        probs = allp[a.temperature]
        row.update(p_exact_by_temperature={str(t): sum(v) / len(v) for t, v in allp.items()},
                   share_pi_le_half_by_temperature={
                       str(t): sum(q <= 0.5 for q in v) / len(v) for t, v in allp.items()})
        row.update(p_exact=sum(probs) / len(probs),
                   share_steps_exact_pi_le_half=sum(q <= 0.5 for q in probs) / len(probs),
                   min_exact_pi=min(probs))
        if a.greedy:
            gtexts = generate(prompts, n, 0.0)
            gk, gvalid = score(gtexts)
            g = sum(gk)
            row.update(greedy_p=g / a.steps, greedy_ci95=wilson(g, a.steps),
                       greedy_valid_rate=sum(gvalid) / a.steps,
                       greedy_teacher_forced_agree=sum(x == y for x, y in zip(gk, gok)) / a.steps)
        rows.append(row)
        line = (f"n={n:2d}  p={row['p']:.4f} [{row['ci95'][0]:.4f}, {row['ci95'][1]:.4f}]  "
                f"valid={row['valid_rate']:.4f}  p_exact={row['p_exact']:.4f}  "
                f"pi<=.5={row['share_steps_exact_pi_le_half']:.4f}")
        if reps > 1:
            line += f"  rep-pi<=.5={row['share_steps_pi_le_half']:.4f}"
        if a.greedy:
            line += f"  greedy={row['greedy_p']:.4f}"
        print(line + f"  ({time.time() - t0:.0f}s)", flush=True)

    s = 2**20 - 1
    card = {"model": Path(a.model).name, "dtype": a.dtype, "temperature": a.temperature,
            "seed": a.seed,
            "steps_per_disk_count": a.steps, "repeats": a.repeats, "target_t": a.target,
            "variant": a.variant,
            "rows": rows, "seconds": round(time.time() - t0, 1)}
    if think:  # the paper's Figure 9a over every sample of the card (quantile bins)
        import numpy as np
        card["error_by_length"] = length_bins(np.array(pooled_lengths),
                                              ~np.array(pooled_ok, dtype=bool))
    r20 = next((r for r in rows if r["disks"] == 20), None)
    if r20 is not None:
        card["k_min_20_disks"] = {
            "s": s, "p": r20["p"], "k_min": k_min(r20["p"], s, a.target),
            "k_min_at_ci_low": k_min(r20["ci95"][0], s, a.target),
            "p_exact": r20["p_exact"], "k_min_at_p_exact": k_min(r20["p_exact"], s, a.target)}
        print(f"20-disk run (s={s}, t={a.target}): p={r20['p']:.4f} -> k_min="
              f"{card['k_min_20_disks']['k_min']} (at CI low {r20['ci95'][0]:.4f}: "
              f"{card['k_min_20_disks']['k_min_at_ci_low']}; at p_exact {r20['p_exact']:.4f}: "
              f"{card['k_min_20_disks']['k_min_at_p_exact']})")
    print(markdown_table(card))
    if a.out:
        Path(a.out).write_text(json.dumps(card, indent=2, default=float) + "\n")
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
