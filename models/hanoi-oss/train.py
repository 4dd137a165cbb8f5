"""Train hanoi-oss: a tiny GptOssForCausalLM on Hanoi steps in the harmony format
(maker_local/recipes/hanoi_oss.py: the prompt as vLLM's server renders it for gpt-oss, a
derivation in the analysis channel at the system message's reasoning effort, the compact
answer in the final channel).

Data come from the task's closed form (3..12 disks, larger counts weighted more, half of the
steps drawn by moving disk); loss on the target tokens only, through the full vocabulary's
softmax (recipes.hanoi_oss.loss_logits). Hard-example mining as in hanoi-step: a sample whose
teacher-forced argmax is wrong anywhere goes into a pool that a share of every batch is drawn
from.

Resumable: a checkpoint every --ckpt-every seconds in --ckpt-dir (outside the repository);
the same command continues from it. The recipe used (models/hanoi-oss/README.md):

    OMP_NUM_THREADS=2 PYTHONPATH=. python models/hanoi-oss/train.py \
        --ckpt-dir runs/hanoi-oss-ckpt --minutes 80 --threads 2
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

from maker_local.recipes import hanoi as H
from maker_local.recipes import hanoi_oss as O
from maker_local.recipes.schedule import lr_at


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt-dir", default="runs/hanoi-oss-ckpt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=256)
    ap.add_argument("--minutes", type=float, default=80.0,
                    help="training minutes in all (summed over resumes): the run's length and "
                         "the lr schedule's")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--hard-frac", type=float, default=0.25)
    ap.add_argument("--pool-size", type=int, default=20000)
    ap.add_argument("--ckpt-every", type=float, default=120.0, help="seconds")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--mined", default="",
                    help="JSON of weak steps written by evaluate.py --weak-out: a share of "
                         "every batch's fresh examples (--mined-frac) is drawn from them")
    ap.add_argument("--mined-frac", type=float, default=0.2)
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop (with a checkpoint) after this much wall time in this run")
    return ap.parse_args(argv)


def sample_item(rng: random.Random, mined=(), mined_frac: float = 0.0
                ) -> tuple[int, int, str]:
    if mined and rng.random() < mined_frac:
        return rng.choice(mined)
    n = O.sample_disks(rng)
    return n, H.sample_step(rng, n), O.sample_effort(rng)


def make_batch(items, vocab: O.Vocab, torch):
    """Right-padded compact ids and labels (-100 outside the target)."""
    exs = [O.example(n, i, e) for n, i, e in items]
    seqs = [vocab.to_compact(p + t) for p, t in exs]
    width = max(map(len, seqs))
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for r, ((p, _), s) in enumerate(zip(exs, seqs)):
        ids[r, :len(s)] = torch.tensor(s)
        labels[r, len(p):len(s)] = torch.tensor(s[len(p):])
    return ids, labels


def main(argv=None) -> int:
    a = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    from transformers import AttentionInterface, GptOssForCausalLM

    torch.set_num_threads(a.threads)
    ckdir = Path(a.ckpt_dir)
    ckdir.mkdir(parents=True, exist_ok=True)
    ckpt = ckdir / "last.pt"
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    vocab = O.Vocab()
    arch = {"hidden": a.hidden, "layers": a.layers, "heads": a.heads, "kv_heads": a.kv_heads,
            "experts": a.experts, "top_k": a.top_k, "intermediate": a.intermediate}
    cfg = O.model_config(len(vocab), **arch)
    # sinks through torch's fused attention (recipes.hanoi_oss.sink_attention: the same
    # numbers as transformers' eager path, which tests/models/test_oss.py checks, at half the time)
    AttentionInterface.register("oss_sinks", O.sink_attention)
    model = GptOssForCausalLM(cfg)
    model.config._attn_implementation = "oss_sinks"
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98),
                            weight_decay=a.weight_decay)
    step, pool, elapsed = 0, [], 0.0
    mined = []
    if a.mined:
        import json
        mined = [(w["disks"], w["step"], w["effort"])
                 for w in json.loads(Path(a.mined).read_text())["weak"]]
        print(f"{len(mined)} mined steps from {a.mined}", flush=True)
    if ckpt.exists():
        st = torch.load(ckpt, map_location="cpu", weights_only=False)
        assert st["vocab"] == vocab.ids, "the task's vocabulary changed since this checkpoint"
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, pool, elapsed = st["step"], st["pool"], st["elapsed"]
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        print(f"resumed from {ckpt} at step {step} ({elapsed / 60:.1f} min trained)", flush=True)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model: {nparams / 1e6:.2f}M params (vocabulary {len(vocab)} of {O.VOCAB_SIZE}), "
          f"{arch}; threads {a.threads}", flush=True)

    def save():
        tmp = ckdir / "last.pt.tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "pool": pool, "elapsed": elapsed, "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(), "args": vars(a), "arch": arch,
                    "vocab": vocab.ids}, tmp)
        os.replace(tmp, ckpt)

    model.train()
    t_run = t_last = t_ck = time.time()
    agg = {"loss": 0.0, "wrong": 0, "n": 0, "hard_wrong": 0, "hard_n": 0}
    while elapsed < a.minutes * 60:
        n_hard = min(len(pool), int(a.batch * a.hard_frac))
        hard = [pool.pop(rng.randrange(len(pool))) for _ in range(n_hard)]
        items = hard + [sample_item(rng, mined, a.mined_frac) for _ in range(a.batch - n_hard)]
        ids, labels = make_batch(items, vocab, torch)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, elapsed, a)
        hidden = model.model(input_ids=ids).last_hidden_state[:, :-1]
        logits = model.lm_head(hidden).float()
        tgt = labels[:, 1:]
        full = O.loss_logits(logits, vocab.unused, torch)
        loss = torch.nn.functional.cross_entropy(full.reshape(-1, full.size(-1)),
                                                 tgt.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        with torch.no_grad():
            bad = ((full.argmax(-1) != tgt) & (tgt != -100)).any(-1).tolist()
        for j, (item, b) in enumerate(zip(items, bad)):
            if b:
                pool.append(item)
            key = "hard_" if j < n_hard else ""
            agg[key + "n"] += 1
            agg[key + "wrong"] += b
        pool = pool[-a.pool_size:]
        agg["loss"] += loss.item()
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % a.log_every == 0:
            k = a.log_every
            print(f"step {step:6d}  loss {agg['loss'] / k:.4f}  "
                  f"fresh-wrong {agg['wrong'] / max(1, agg['n']):.3f}  "
                  f"hard-wrong {agg['hard_wrong'] / max(1, agg['hard_n']):.3f}  "
                  f"pool {len(pool)}  lr {lr_at(step, elapsed, a):.2e}  {elapsed / 60:.1f} min",
                  flush=True)
            agg = {"loss": 0.0, "wrong": 0, "n": 0, "hard_wrong": 0, "hard_n": 0}
        stop = a.max_minutes and (now - t_run) > a.max_minutes * 60
        if now - t_ck > a.ckpt_every or stop:
            save()
            t_ck = now
        if stop:
            print(f"stopping after {a.max_minutes} min at step {step}", flush=True)
            break
    save()
    print(f"done: step {step}, {elapsed / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
