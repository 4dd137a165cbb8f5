"""Exhaustive check of the rare steps: every step that moves a disk d >= --min-disk in an n-disk
run, and the steps right before and after each (the card samples 50 per class; this looks at
all of them). Writes the steps whose exact p_i (teacher-forced, at --temperature) is below
--below, or where greedy is wrong, as JSON: train.py --mined FILE trains on them.

    OMP_NUM_THREADS=2 PYTHONPATH=. python models/hanoi-step/mine.py \
        --disks 20 --min-disk 8 --threads 2 --out /tmp/mined.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from maker_local.recipes.hanoi import disk_list, measure

HERE = Path(__file__).resolve().parent


def rare_steps(n: int, min_disk: int, neighbours: bool) -> list[int]:
    """Every step of an n-disk run that moves a disk >= min_disk (step i moves disk d when
    i + 1 = (2m + 1) 2^(d - 1)), with the steps right before and after each when asked."""
    last = 2**n - 2
    out: set[int] = set()
    for d in range(min_disk, n + 1):
        for m in range(2 ** (n - d)):
            i = (2 * m + 1) * 2 ** (d - 1) - 1
            out.add(i)
            if neighbours:
                out.update(j for j in (i - 1, i + 1) if 0 <= j <= last)
    return sorted(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="all rare steps checked; the weak ones listed")
    ap.add_argument("--model", default=str(HERE / "model"))
    ap.add_argument("--disks", default="20", help="e.g. 20 or 17-20")
    ap.add_argument("--min-disk", type=int, default=8)
    ap.add_argument("--no-neighbours", action="store_true")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--below", type=float, default=0.99, help="list steps with p_i below this")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(a.threads)
    m = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    t0 = time.time()
    weak, summary = [], []
    for n in disk_list(a.disks):
        steps = rare_steps(n, a.min_disk, not a.no_neighbours)
        ps, g = measure(m, torch, n, steps, a.temperature)
        w = [(n, i, p, ok) for i, p, ok in zip(steps, ps, g) if p < a.below or not ok]
        weak += w
        summary.append({"disks": n, "checked": len(steps), "weak": len(w),
                        "greedy_wrong": sum(not ok for ok in g), "min_p": min(ps),
                        "below_0.5": sum(p < 0.5 for p in ps),
                        "below_0.9": sum(p < 0.9 for p in ps)})
        print(f"n={n:2d}: {len(steps)} steps checked, {len(w)} below {a.below}, "
              f"{summary[-1]['below_0.9']} below 0.9, {summary[-1]['greedy_wrong']} greedy "
              f"wrong, min p {min(ps):.4f}  ({time.time() - t0:.0f} s)", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps({
            "model": Path(a.model).name, "min_disk": a.min_disk, "below": a.below,
            "temperature": a.temperature, "summary": summary,
            "weak": [{"disks": n, "step": i, "p": round(p, 6), "greedy": ok}
                     for n, i, p, ok in weak]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
