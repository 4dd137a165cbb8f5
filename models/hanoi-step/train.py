"""Train the hanoi-step model (a tiny LlamaForCausalLM) on the compact Hanoi step format.

Data are generated on the fly from the task's closed form (random steps of 3..20-disk runs,
larger disk counts weighted more, half of them drawn by moving disk so that the rare moves of
large disks are seen), loss on the answer tokens only. Hard-example mining: every training
sample whose teacher-forced argmax differs from the target anywhere (i.e. greedy decoding
would get it wrong) goes into a pool, and a share of every batch is drawn from that pool.

Resumable: a checkpoint is written every --ckpt-every seconds to --ckpt-dir (outside the
repository); rerunning the same command continues from it. Example (the recipe used):

    OMP_NUM_THREADS=1 PYTHONPATH=. python models/hanoi-step/train.py \
        --ckpt-dir runs/hanoi-step-ckpt --layers 6 --minutes 65 --threads 1
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

from maker_local.recipes import hanoi as H
from maker_local.recipes.schedule import lr_at


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt-dir", default="runs/hanoi-step-ckpt")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:0, ...")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3600, help="optimizer steps in total")
    ap.add_argument("--minutes", type=float, default=0.0,
                    help="if > 0: a time budget (training minutes, summed over resumes) that "
                         "replaces --steps as the length of the run and of the lr schedule")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--hard-frac", type=float, default=0.25, help="batch share from hard pool")
    ap.add_argument("--pool-size", type=int, default=20000)
    ap.add_argument("--ckpt-every", type=float, default=120.0, help="seconds")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop (with a checkpoint) after this much wall time in this run")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--init", default="",
                    help="start (when no checkpoint exists) from the weights of this HF folder, "
                         "e.g. models/hanoi-step/model: continued training")
    ap.add_argument("--focus", type=float, default=0.0,
                    help="share of fresh examples drawn by (n, d) class from the large-disk "
                         "corner (n >= --focus-min-n, moving disk d >= --focus-min-d)")
    ap.add_argument("--focus-min-n", type=int, default=12)
    ap.add_argument("--focus-min-d", type=int, default=8)
    ap.add_argument("--focus-neighbours", type=float, default=0.0,
                    help="share of the corner's examples taken 1 or 2 steps before or after "
                         "the large-disk move instead")
    ap.add_argument("--mined", default="",
                    help="JSON of weak steps written by mine.py: a share of every batch "
                         "(--mined-frac) is drawn from them, with replacement")
    ap.add_argument("--mined-frac", type=float, default=0.25)
    ap.add_argument("--variant", choices=H.VARIANTS, default="step",
                    help="think: the reasoning stand-in (models/hanoi-think): <think> "
                         "derivation </think> before the answer")
    ap.add_argument("--positions", type=int, default=160,
                    help="max_position_embeddings (think variant: 192)")
    return ap.parse_args(argv)


def progress(step: int, elapsed: float, a) -> float:
    """Fraction of the run done: by steps, or by training time with --minutes."""
    if a.minutes > 0:
        return elapsed / (a.minutes * 60)
    return step / a.steps


def make_batch(examples, torch, device):
    """Right-padded inputs and labels (-100 outside the answer)."""
    seqs = [p + a for p, a in examples]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), H.PAD, dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for r, ((p, a), s) in enumerate(zip(examples, seqs)):
        ids[r, :len(s)] = torch.tensor(s)
        labels[r, len(p):len(s)] = torch.tensor(a)
    return ids.to(device), labels.to(device)


def main(argv=None) -> int:
    a = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    from transformers import LlamaForCausalLM

    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    ckdir = Path(a.ckpt_dir)
    ckdir.mkdir(parents=True, exist_ok=True)
    ckpt = ckdir / "last.pt"

    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    cfg = H.model_config(a.hidden, a.layers, positions=a.positions)
    model = LlamaForCausalLM(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98),
                            weight_decay=a.weight_decay)
    step, pool, elapsed = 0, [], 0.0
    mined = []
    if a.mined:
        import json
        mined = [(w["disks"], w["step"]) for w in json.loads(Path(a.mined).read_text())["weak"]]
        print(f"{len(mined)} mined steps from {a.mined}", flush=True)
    if a.init and not (ckpt.exists() and not a.fresh):
        from safetensors.torch import load_file
        sd = load_file(str(Path(a.init) / "model.safetensors"))
        missing, unexpected = model.load_state_dict(sd, strict=False)
        # tied embeddings: lm_head.weight is not stored
        assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
        model.tie_weights()
        print(f"initialised from {a.init}", flush=True)
    if ckpt.exists() and not a.fresh:
        st = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, pool, elapsed = st["step"], st["pool"], st["elapsed"]
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        print(f"resumed from {ckpt} at step {step} ({elapsed / 60:.1f} min trained)", flush=True)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model: {nparams / 1e6:.2f}M params, hidden {a.hidden}, layers {a.layers}; "
          f"device {device}, threads {a.threads}", flush=True)

    def save():
        tmp = ckdir / "last.pt.tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "pool": pool, "elapsed": elapsed, "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(), "args": vars(a),
                    "config": cfg.to_dict()}, tmp)
        os.replace(tmp, ckpt)

    model.train()
    t_run = time.time()
    t_last = time.time()
    t_ck = time.time()
    agg = {"loss": 0.0, "wrong": 0, "n": 0, "hard_wrong": 0, "hard_n": 0}
    while progress(step, elapsed, a) < 1.0:
        n_hard = min(len(pool), int(a.batch * a.hard_frac))
        hard = [pool.pop(rng.randrange(len(pool))) for _ in range(n_hard)]
        fresh = []
        for _ in range(a.batch - n_hard):
            if mined and rng.random() < a.mined_frac:
                fresh.append(rng.choice(mined))
                continue
            if a.focus and rng.random() < a.focus:
                fresh.append(H.sample_class_step(rng, a.focus_min_n, a.focus_min_d,
                                                 a.focus_neighbours))
                continue
            n = H.sample_disks(rng)
            fresh.append((n, H.sample_step(rng, n)))
        items = hard + fresh
        ids, labels = make_batch([H.example(n, i, a.variant) for n, i in items], torch, device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, elapsed, a)
        logits = model(input_ids=ids).logits[:, :-1]
        tgt = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), tgt.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        with torch.no_grad():
            bad = ((logits.argmax(-1) != tgt) & (tgt != -100)).any(-1).tolist()
        for j, (item, b) in enumerate(zip(items, bad)):
            if b:
                pool.append(item)
            if j < n_hard:
                agg["hard_n"] += 1
                agg["hard_wrong"] += b
            else:
                agg["n"] += 1
                agg["wrong"] += b
        if len(pool) > a.pool_size:
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
