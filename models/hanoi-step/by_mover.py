"""Exact per-step accuracy by (disk count n, moving disk d): the card's class table.

Besides the steps that move disk d ("move"), the steps right after and right before each move
of a disk d >= 2 ("after", "before": disk-1 moves whose state or previous move only that large
move makes; the step after the largest disk's single move has a previous move that names that
disk, which uniform steps never show) are checked the same way.

Uniform steps almost never move a large disk (disk d moves in 2^-d of the steps), so every
class (n, d) is checked directly: all of its 2^(n-d) steps when there are fewer than --count,
else --count at random (seeded). Per class: the mean and min of p_i = the teacher-forced
probability that one sample at --temperature is exactly right (no sampling noise), and greedy
accuracy (teacher-forced argmax right at every answer token = greedy decoding right).

    OMP_NUM_THREADS=1 PYTHONPATH=. python models/hanoi-step/by_mover.py \
        --disks 3-20 --count 50 --out models/hanoi-step/card_classes.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from maker_local.recipes.hanoi import disk_list, measure

HERE = Path(__file__).resolve().parent

BAR_MEAN, BAR_MIN = 0.99, 0.9  # the bar every class must clear (issue 8)


def class_steps(n: int, d: int, count: int, seed: int) -> list[int]:
    """The checked steps of class (n, d): all of them, or `count` at random."""
    total = 2 ** (n - d)
    rng = random.Random(seed * 1_000_003 + n * 101 + d)
    ms = range(total) if total <= count else rng.sample(range(total), count)
    return [(2 * m + 1) * 2 ** (d - 1) - 1 for m in ms]


def markdown(card: dict, kind: str = "move") -> str:
    """The class table as Markdown: one row per disk count n, one column per moving disk d,
    each cell 'mean p_i (min p_i)' of the class's checked steps, '!' where greedy slips."""
    rows = [r for r in card["classes"] if r.get("kind", "move") == kind]
    ns = sorted({r["disks"] for r in rows})
    top = max(r["disk"] for r in card["classes"])
    by = {(r["disks"], r["disk"]): r for r in rows}
    head = "| n | " + " | ".join(f"d={d}" for d in range(1, top + 1)) + " |"
    out = [head, "|" + "---|" * (top + 1)]
    for n in ns:
        cells = []
        for d in range(1, top + 1):
            r = by.get((n, d))
            cells.append("" if r is None else
                         f"{r['mean_p']:.4f} ({r['min_p']:.4f})"
                         + ("" if r["greedy"] == 1.0 else " !"))
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="exact p_i by (disk count, moving disk)")
    ap.add_argument("--model", default=str(HERE / "model"))
    ap.add_argument("--disks", default="3-20", help="e.g. 3-20 or 10,20")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="", help="write the table as JSON here")
    ap.add_argument("--markdown", default="", help="print the table of this JSON card as "
                    "Markdown (for the model card) and exit")
    a = ap.parse_args(argv)
    if a.markdown:
        card = json.loads(Path(a.markdown).read_text())
        for kind, what in (("move", "steps that move disk d"),
                           ("after", "the step right after each move of disk d"),
                           ("before", "the step right before each move of disk d")):
            print(f"\n{what}:\n\n{markdown(card, kind)}")
        return 0
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(a.threads)
    m = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    t0 = time.time()
    rows = []
    groups = [(n, d, kind) for n in disk_list(a.disks) for kind in ("move", "after", "before")
              for d in range(1 if kind == "move" else 2, n + 1)]
    for n, d, kind in groups:
        steps = class_steps(n, d, a.count, a.seed)
        if kind != "move":  # the disk-1 moves right after / before the moves of disk d
            off = 1 if kind == "after" else -1
            steps = [i + off for i in steps if 0 <= i + off <= 2 ** n - 2]
        ps, g = measure(m, torch, n, steps, a.temperature)
        row = {"disks": n, "size": n, "disk": d, "kind": kind,
               "class_steps": 2 ** (n - d), "checked": len(steps),
               "mean_p": sum(ps) / len(ps), "min_p": min(ps),
               "greedy": sum(g) / len(g), "worst_step": steps[ps.index(min(ps))],
               "p": [round(v, 6) for v in ps]}
        row["ok"] = (row["greedy"] == 1.0 and row["mean_p"] >= BAR_MEAN
                     and row["min_p"] >= BAR_MIN)
        rows.append(row)
        print(f"n={n:2d} disk={d:2d} {kind:6s} checked={len(steps):3d} "
              f"mean_p={row['mean_p']:.4f} "
              f"min_p={row['min_p']:.4f} greedy={row['greedy']:.3f}"
              f"{'' if row['ok'] else '  BELOW THE BAR'}", flush=True)
    bad = [r for r in rows if not r["ok"]]
    print(f"{len(rows)} classes, {len(bad)} below the bar (greedy all right, mean p >= "
          f"{BAR_MEAN}, min p >= {BAR_MIN}); {time.time() - t0:.0f} s", flush=True)
    if a.out:
        card = {"temperature": a.temperature, "count": a.count, "seed": a.seed,
                "bar": {"mean_p": BAR_MEAN, "min_p": BAR_MIN, "greedy": 1.0},
                "model": Path(a.model).name, "classes": rows}
        Path(a.out).write_text(json.dumps(card, indent=1) + "\n")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
