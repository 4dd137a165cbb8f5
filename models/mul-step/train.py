"""Train the mul-step model (a tiny LlamaForCausalLM) on all 10,000 long-multiplication steps.

Every optimizer step takes a batch from a shuffled pass over the 10,000 inputs (a new shuffle
each epoch), plus, once the first full evaluation has run, a share (--hard-frac) of inputs whose
exact probability was below --hard-p at the last evaluation (drawn with replacement, weighted
by 1 - p). Loss on the answer tokens (incl. </s>) only. Every --eval-every steps the model is
scored on all 10,000 inputs (teacher-forced exact probability of the right answer at T=1, and
greedy correctness); training stops when greedy is right on all and min p_i >= --stop-p.

Resumable: a checkpoint every --ckpt-every seconds to --ckpt-dir (outside the repository);
rerunning the same command continues from it. The recipe used:

    OMP_NUM_THREADS=1 python models/mul-step/train.py --ckpt-dir runs/mul-step-ckpt --threads 1
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

from maker_local.recipes import mul as M
from maker_local.recipes.schedule import lr_at


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt-dir", default="runs/mul-step-ckpt")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=0, help="attention heads (0: hidden / 64)")
    ap.add_argument("--intermediate", type=int, default=0, help="MLP width (0: 4 x hidden)")
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.03)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=40.0,
                    help="length of the cosine lr schedule in training minutes (summed over "
                         "resumes); after it, training goes on at the floor lr")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--hard-frac", type=float, default=0.25)
    ap.add_argument("--hard-p", type=float, default=0.9999,
                    help="inputs below this exact p at the last evaluation are 'hard'")
    ap.add_argument("--easy-frac", type=float, default=0.0,
                    help="share of every batch drawn from the 'easy' inputs, min(a, b) <= "
                         "--easy-max (a*b is 0, a or b: d depends on fewer digits), which "
                         "gives the units digit a signal to start from (a curriculum aid)")
    ap.add_argument("--easy-max", type=int, default=1)
    ap.add_argument("--curriculum", action="store_true",
                    help="start on the inputs with min(a, b) <= 0 (a*b = 0: d = (c+k) mod 10) "
                         "and widen the set (min(a, b) <= m, m = 1..9) each time greedy is "
                         "right on >= --advance of the current set; --cur-frac of every batch "
                         "from the current set, the rest from the shuffled pass over all")
    ap.add_argument("--cur-frac", type=float, default=0.75)
    ap.add_argument("--advance", type=float, default=0.98)
    ap.add_argument("--eval-every", type=int, default=40, help="optimizer steps")
    ap.add_argument("--stop-p", type=float, default=0.9995,
                    help="stop when greedy is right on all inputs and min p_i >= this")
    ap.add_argument("--ckpt-every", type=float, default=120.0, help="seconds")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--max-minutes", type=float, default=0.0,
                    help="stop (with a checkpoint) after this much wall time in this run")
    ap.add_argument("--give-up-minutes", type=float, default=90.0,
                    help="stop after this many training minutes in total even if not converged")
    ap.add_argument("--grow-from", default="",
                    help="when --ckpt-dir has no checkpoint: start from this (shallower) "
                         "checkpoint, its layers at the bottom of the new model, the new top "
                         "layers' output projections (o_proj, down_proj) zero, so the model "
                         "first computes what the old one did; fresh optimizer and schedule")
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--init", default="",
                    help="with no checkpoint: start from an exported model folder (e.g. "
                         "models/mul-step/model), so training continues from what is committed")
    ap.add_argument("--start-level", type=int, default=None,
                    help="curriculum level to start at with --init (train_info.json has it)")
    return ap.parse_args(argv)


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
    cfg = M.model_config(a.hidden, a.layers, a.intermediate or None, heads=a.heads)
    model = LlamaForCausalLM(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98),
                            weight_decay=a.weight_decay)
    xs = M.all_inputs()
    all_ids, _ = M.batch_tensors(xs, torch)
    all_ids = all_ids.to(device)
    n_all = len(xs)
    easy = [i for i, x in enumerate(xs) if min(x[0], x[1]) <= a.easy_max]
    levels = [[i for i, x in enumerate(xs) if min(x[0], x[1]) <= m] for m in range(10)]
    step, elapsed, epoch, perm, pos = 0, 0.0, 0, [], 0
    level = 0 if a.curriculum else 9
    hard: list[tuple[int, float]] = []  # (input index, p at the last evaluation)
    history: list[dict] = []
    if a.grow_from and not (ckpt.exists() and not a.fresh):
        old = torch.load(a.grow_from, map_location=device, weights_only=False)
        missing, unexpected = model.load_state_dict(old["model"], strict=False)
        assert not unexpected, unexpected
        new = sorted({int(k.split(".")[2]) for k in missing if k.startswith("model.layers.")})
        assert set(missing) <= {k for k in model.state_dict() if k.startswith("model.layers.")
                                and int(k.split(".")[2]) in new}, missing
        with torch.no_grad():
            for i in new:
                model.model.layers[i].self_attn.o_proj.weight.zero_()
                model.model.layers[i].mlp.down_proj.weight.zero_()
        model.tie_weights()
        history = [dict(h, stage="grown-from") for h in old["history"]]
        print(f"grown from {a.grow_from} (step {old['step']}, {old['elapsed'] / 60:.1f} min, "
              f"{old['config']['num_hidden_layers']} layers): new layers {new}", flush=True)
    if a.init and not (ckpt.exists() and not a.fresh):
        src = LlamaForCausalLM.from_pretrained(a.init, dtype=torch.float32)
        model.load_state_dict(src.state_dict())
        if a.start_level is not None:
            level = a.start_level
        print(f"initialised from {a.init} (curriculum level {level})", flush=True)
    if ckpt.exists() and not a.fresh:
        st = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, elapsed, epoch, perm, pos = (st["step"], st["elapsed"], st["epoch"], st["perm"],
                                           st["pos"])
        hard, history = st["hard"], st["history"]
        level = st.get("level", level)
        rng.setstate(st["rng"])
        torch.set_rng_state(st["torch_rng"])
        print(f"resumed from {ckpt} at step {step} ({elapsed / 60:.1f} min trained)", flush=True)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model: {nparams} params, hidden {a.hidden}, layers {a.layers}, "
          f"heads {cfg.num_attention_heads}; device {device}, "
          f"threads {a.threads}", flush=True)

    def save(done=False):
        tmp = ckdir / "last.pt.tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": elapsed, "epoch": epoch, "perm": perm, "pos": pos,
                    "hard": hard, "history": history, "level": level, "done": done, "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(), "args": vars(a),
                    "config": cfg.to_dict()}, tmp)
        os.replace(tmp, ckpt)

    @torch.no_grad()
    def evaluate():
        model.eval()
        lps, oks = [], []
        for b in range(0, n_all, 2000):
            lp, ok = M.answer_logprobs(model, all_ids[b:b + 2000], torch)
            lps.append(lp)
            oks.append(ok)
        model.train()
        p = torch.cat(lps).exp()
        ok = torch.cat(oks)
        return p, ok

    if ckpt.exists() and not a.fresh and st.get("done"):
        print("checkpoint is marked done (converged); nothing to do", flush=True)
        return 0

    model.train()
    t_run = t_last = t_ck = time.time()
    agg_loss, agg_n = 0.0, 0
    converged = False
    while True:
        n_hard = min(int(a.batch * a.hard_frac), len(hard) * 4) if hard and level == 9 else 0
        n_easy = int(a.batch * (a.cur_frac if level < 9 else a.easy_frac))
        cur = levels[level] if level < 9 else easy
        n_perm = a.batch - n_hard - n_easy
        idx = []
        while len(idx) < n_perm:
            if pos >= len(perm):
                perm = list(range(n_all))
                rng.shuffle(perm)
                pos = 0
                epoch += 1
            take = min(n_perm - len(idx), len(perm) - pos)
            idx += perm[pos:pos + take]
            pos += take
        if n_easy:
            idx += [rng.choice(cur) for _ in range(n_easy)]
        if n_hard:
            idx += rng.choices([i for i, _ in hard], weights=[1.0 - q + 1e-6 for _, q in hard],
                               k=n_hard)
        ids = all_ids[torch.tensor(idx, device=device)]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, elapsed, a)
            g["weight_decay"] = a.weight_decay  # the command line's, also after a resume
        logits = model(input_ids=ids).logits[:, M.PROMPT_LEN - 1:-1]
        tgt = ids[:, M.PROMPT_LEN:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        agg_loss += loss.item()
        agg_n += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % a.log_every == 0:
            print(f"step {step:6d}  epoch {epoch:4d}  loss {agg_loss / agg_n:.5f}  "
                  f"lr {lr_at(step, elapsed, a):.2e}  hard {len(hard)}  {elapsed / 60:.1f} min",
                  flush=True)
            agg_loss, agg_n = 0.0, 0
        if step % a.eval_every == 0:
            t_e = time.time()
            p, ok = evaluate()
            hard = [(i, float(q)) for i, q in enumerate(p.tolist()) if q < a.hard_p]
            rec = {"step": step, "minutes": round(elapsed / 60, 2),
                   "greedy_wrong": int((~ok).sum()), "p_min": float(p.min()),
                   "p_mean": float(p.mean()), "below_0.99": int((p < 0.99).sum()),
                   "below_0.999": int((p < 0.999).sum()), "hard": len(hard)}
            if level < 9:
                sel = torch.tensor(levels[level])
                acc = float(ok[sel].float().mean())
                rec.update(level=level, level_greedy_right=round(acc, 4))
                print(f"curriculum level {level} ({len(sel)} inputs): greedy right {acc:.4f}",
                      flush=True)
                while level < 9 and float(ok[torch.tensor(levels[level])].float().mean()) >= a.advance:
                    level += 1
                    print(f"-> level {level} ({len(levels[level])} inputs)", flush=True)
            history.append(rec)
            print(f"eval  step {step}  greedy_wrong {rec['greedy_wrong']}  "
                  f"p_min {rec['p_min']:.6f}  p_mean {rec['p_mean']:.6f}  "
                  f"<.99 {rec['below_0.99']}  <.999 {rec['below_0.999']}  "
                  f"({time.time() - t_e:.1f}s)", flush=True)
            t_last = time.time()  # evaluation time is not training time
            converged = level == 9 and rec["greedy_wrong"] == 0 and rec["p_min"] >= a.stop_p
        stop = a.max_minutes and (now - t_run) > a.max_minutes * 60
        give_up = elapsed > a.give_up_minutes * 60
        if converged or give_up or stop or now - t_ck > a.ckpt_every:
            save(done=converged)
            t_ck = now
        if converged:
            print(f"converged: step {step}, epoch {epoch}, {elapsed / 60:.1f} min", flush=True)
            return 0
        if give_up:
            print(f"gave up after {elapsed / 60:.1f} min at step {step}", flush=True)
            return 1
        if stop:
            print(f"stopping after {a.max_minutes} min of this run at step {step}", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
