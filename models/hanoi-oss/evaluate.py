"""hanoi-oss's card: every step of every claimed disk count, checked one by one.

    PYTHONPATH=. python models/hanoi-oss/evaluate.py --disks 3-12 --effort low \
        --out models/hanoi-oss/card.json

For each step, the exact probability that one sample at T = 1 writes the whole target (the
thought in the analysis channel and the answer in the final channel, token for token):
teacher-forced through the full 201,088-id softmax (recipes.hanoi_oss.loss_logits: the
exported model's, exactly), from the trained weights (weights.safetensors). A sample whose
thought or spelling differs may still vote right, so a step's vote p_i is at least this
exact p_i: a step with exact p_i > 0.5 is one that voting fixes, proven, not sampled. Also:
whether greedy decoding writes the target, and the thought's length in tokens (as vLLM counts
reasoning tokens) per effort.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository, for maker_local

from maker_local.backends.harmony import read  # noqa: E402
from maker_local.recipes import hanoi as H  # noqa: E402
from maker_local.recipes import hanoi_oss as O  # noqa: E402


def load(weights: Path, torch):
    from safetensors.torch import load_file
    from transformers import AttentionInterface, GptOssForCausalLM

    info = json.loads((weights.parent / "train_info.json").read_text())
    sd = load_file(str(weights))
    vocab = O.Vocab(tuple(sd.pop(O.VOCAB_KEY).tolist()))
    cfg = O.model_config(len(vocab), **info["arch"])
    model = GptOssForCausalLM(cfg)
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    AttentionInterface.register("oss_sinks", O.sink_attention)
    model.config._attn_implementation = "oss_sinks"
    return model.eval(), vocab


def score(model, vocab, torch, n: int, steps: list[int], effort: str, batch: int = 96):
    """(exact p_i, greedy right, thought tokens) for these steps."""
    out = []
    for b in range(0, len(steps), batch):
        exs = [O.example(n, i, effort) for i in steps[b:b + batch]]
        seqs = [vocab.to_compact(p + t) for p, t in exs]
        width = max(map(len, seqs))
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = torch.tensor(s)
        with torch.no_grad():
            logits = model.lm_head(model.model(input_ids=ids).last_hidden_state).float()
            lp = torch.log_softmax(O.loss_logits(logits, vocab.unused, torch), -1)
        for r, (p, t) in enumerate(exs):
            tgt = torch.tensor(vocab.to_compact(t))
            rows = lp[r, len(p) - 1:len(p) + len(t) - 1]
            logp = float(rows.gather(1, tgt[:, None]).sum())
            greedy = bool((rows.argmax(-1) == tgt).all())
            out.append((math.exp(logp), greedy, read(t).reasoning_tokens))
    return out




def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=str(HERE / "weights.safetensors"))
    ap.add_argument("--disks", default="3-12")
    ap.add_argument("--effort", default="low",
                    help="low, medium, high or all (the first is the profile's: low)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="",
                    help="card.json: rows per disk count (the profile's effort first); "
                         "card_classes.json is written beside it (exact p_i of every step, "
                         "by moving disk: what k auto reads)")
    ap.add_argument("--weak-out", default="",
                    help="write the steps below --weak-below here (train.py --mined reads it)")
    ap.add_argument("--weak-below", type=float, default=0.9)
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    torch.set_num_threads(a.threads)
    model, vocab = load(Path(a.weights), torch)
    efforts = O.EFFORTS if a.effort == "all" else (a.effort,)
    card = {"weights": Path(a.weights).name, "what": __doc__.split("\n\n")[2].strip(),
            "temperature": 1.0, "rows": [], "other_efforts": []}
    classes = {"temperature": 1.0, "what": "exact (teacher-forced) p_i of every step, by the "
               "disk its move moves; a lower bound of each step's vote p_i", "classes": []}
    weak = []
    print("effort  n   steps  mean exact p  min exact p_i  steps p_i<=0.5  p_i<0.9  "
          "greedy right  thought tokens mean/max")
    for effort in efforts:
        for n in H.disk_list(a.disks):
            t0 = time.time()
            steps = list(range(2**n - 1))
            got = score(model, vocab, torch, n, steps, effort)
            ps = [g[0] for g in got]
            worst = min(range(len(ps)), key=ps.__getitem__)
            thought = [g[2] for g in got]
            row = {"size": n, "disks": n, "effort": effort, "steps": len(ps),
                   "p": sum(ps) / len(ps), "p_exact_by_temperature": {"1.0": sum(ps) / len(ps)},
                   "mean_p_exact": sum(ps) / len(ps), "min_p_exact": ps[worst],
                   "worst_step": worst, "hopeless": sum(p <= 0.5 for p in ps),
                   "below_0_9": sum(p < 0.9 for p in ps),
                   "greedy_right": sum(g[1] for g in got),
                   "thought_tokens_mean": sum(thought) / len(thought),
                   "thought_tokens_max": max(thought), "seconds": round(time.time() - t0, 1)}
            card["rows" if effort == efforts[0] else "other_efforts"].append(row)
            if effort == efforts[0]:
                for d in range(1, n + 1):
                    ids = [i for i in steps if (i + 1) % 2**d == 2 ** (d - 1)]
                    classes["classes"].append({
                        "size": n, "disks": n, "disk": d, "kind": "move",
                        "class_steps": len(ids), "checked": len(ids),
                        "min_p": min(ps[i] for i in ids),
                        "p": [round(ps[i], 6) for i in ids]})
            weak += [{"disks": n, "step": i, "effort": effort, "p": round(p, 6)}
                     for i, p in enumerate(ps) if p < a.weak_below]
            print(f"{effort:7s} {n:2d} {len(ps):7,d}  {row['mean_p_exact']:.4f}        "
                  f"{row['min_p_exact']:.4f} (step {worst})  {row['hopeless']:5d}  "
                  f"{row['below_0_9']:5d}  {row['greedy_right']:7,d}  "
                  f"{row['thought_tokens_mean']:.1f}/{row['thought_tokens_max']}", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(card, indent=2) + "\n")
        (Path(a.out).parent / "card_classes.json").write_text(json.dumps(classes) + "\n")
    if a.weak_out:
        Path(a.weak_out).write_text(json.dumps({"below": a.weak_below, "weak": weak}) + "\n")
        print(f"{len(weak)} steps below {a.weak_below} -> {a.weak_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
