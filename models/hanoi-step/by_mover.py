"""Exact per-step accuracy by the disk a step moves (teacher-forced, no sampling noise).

Uniform steps almost never move a large disk (disk d moves in 2^-d of the steps), so this checks
them directly: for each disk count n and moving disk d, up to --count steps that move disk d
(seeded), and the mean / min of p_i = probability that one sample at --temperature is exactly
right, plus the greedy accuracy.

    OMP_NUM_THREADS=1 PYTHONPATH=. python models/hanoi-step/by_mover.py \
        --disks 10,14,15,16,17,18,19,20 --count 50
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as C  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="exact p_i by moving disk")
    ap.add_argument("--model", default=str(C.HERE / "model"))
    ap.add_argument("--disks", default="10,20")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    m = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    for n in [int(v) for v in a.disks.split(",")]:
        rng = random.Random(a.seed * 1000 + n)
        for d in range(1, n + 1):
            cnt = min(a.count, 2 ** (n - d))
            ks = rng.sample(range(2 ** (n - d)), cnt)
            ex = [C.example(n, (2 * k + 1) * 2 ** (d - 1) - 1) for k in ks]
            seqs = [p + q for p, q in ex]
            w = max(map(len, seqs))
            ids = torch.full((len(seqs), w), C.PAD)
            for r, s in enumerate(seqs):
                ids[r, :len(s)] = torch.tensor(s)
            with torch.no_grad():
                lg = m(input_ids=ids).logits.float()
            ps, g = [], 0
            for r, (p, q) in enumerate(ex):
                lo = lg[r, len(p) - 1:len(p) + len(q) - 1]
                t = torch.tensor(q)
                lp = torch.log_softmax(lo / a.temperature, -1)
                ps.append(float(lp.gather(1, t[:, None]).sum().exp()))
                g += bool((lo.argmax(-1) == t).all())
            print(f"n={n:2d} disk={d:2d} steps={cnt:3d} mean_p={sum(ps) / cnt:.4f} "
                  f"min_p={min(ps):.4f} greedy={g / cnt:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
