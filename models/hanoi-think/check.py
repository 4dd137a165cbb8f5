"""Per-step check of hanoi-think at every disk count: which steps voting cannot fix.

A card's p is a mean; a run fails at the steps where the model is wrong at least half the
time. This looks at steps one by one. For each disk count n: every step of the run when there
are at most --all-steps of them, else --uniform random steps plus the large-disk classes that
uniform steps almost never show (for each moving disk d >= 2, up to --count of its moves and
the steps right after and right before them), plus any --extra steps.

Each checked step gets its exact p_i: the teacher-forced probability (T = 1) that one sample
is exactly the training target, thought and answer. That undercounts a vote (a slip in the
thought need not change the answer), so every step with exact p_i < --resample-below is also
sampled --samples times (transformers, T = 1, unconstrained, the answer parsed only after
</think>) and its vote p_i is the share of samples whose vote key is right; elsewhere the vote
p_i is at least the exact one. A step is hopeless when its vote p_i <= 0.5: no k fixes it.

    OMP_NUM_THREADS=1 PYTHONPATH=. python models/hanoi-think/check.py \
        --disks 3-20 --extra 20:315381-315401,20:708597-708617 \
        --out models/hanoi-think/card_steps.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from maker_local.recipes import hanoi as H
from maker_local.tasks.hanoi import Hanoi
from maker_local.tasks.hanoi_compact import parse_compact

HERE = Path(__file__).resolve().parent


def extra_steps(spec: str) -> dict[int, set[int]]:
    """'20:315381-315401,4:1' -> {20: {315381..315401}, 4: {1}}."""
    out: dict[int, set[int]] = {}
    for part in filter(None, spec.split(",")):
        n, _, rng = part.partition(":")
        lo, _, hi = rng.partition("-")
        out.setdefault(int(n), set()).update(range(int(lo), int(hi or lo) + 1))
    return out


def steps_for(n: int, a, extra: set[int]) -> tuple[list[int], str]:
    """The checked steps of an n-disk run and how they were chosen."""
    last = 2**n - 2
    if last + 1 <= a.all_steps:
        return list(range(last + 1)), "all"
    rng = random.Random(a.seed * 1000 + n)
    out = set(rng.sample(range(last + 1), a.uniform))
    for d in range(2, n + 1):  # the moves of disk d: i + 1 = (2m + 1) 2^(d - 1)
        total = 2 ** (n - d)
        ms = range(total) if total <= a.count else rng.sample(range(total), a.count)
        for m in ms:
            i = (2 * m + 1) * 2 ** (d - 1) - 1
            out.update(j for j in (i - 1, i, i + 1) if 0 <= j <= last)
    out |= {i for i in extra if 0 <= i <= last}
    return sorted(out), (f"{a.uniform} uniform + up to {a.count} moves of each disk >= 2 "
                         "with the steps right before and after")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="per-step check of hanoi-think")
    ap.add_argument("--model", default=str(HERE / "model"))
    ap.add_argument("--disks", default="3-20", help="e.g. 3-20 or 4,18-20")
    ap.add_argument("--all-steps", type=int, default=2**14 - 1,
                    help="check every step of runs with at most this many steps")
    ap.add_argument("--uniform", type=int, default=2000, help="random steps of a longer run")
    ap.add_argument("--count", type=int, default=50, help="moves of each disk >= 2 (longer run)")
    ap.add_argument("--extra", default="", help="more steps, e.g. 20:315381-315401,4:1")
    ap.add_argument("--resample-below", type=float, default=0.9)
    ap.add_argument("--samples", type=int, default=20, help="samples of each resampled step")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out", default="")
    ap.add_argument("--weak-out", default="",
                    help="also write the steps with vote p_i < --resample-below as train.py "
                         "--mined JSON")
    a = ap.parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(a.threads)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()

    @torch.no_grad()
    def sampled(n: int, steps: list[int]) -> list[int]:
        """Right samples of --samples per step (vote key after </think>)."""
        right = []
        task = Hanoi(n)
        per = max(1, a.batch // a.samples)
        for b in range(0, len(steps), per):
            chunk = steps[b:b + per]
            xs = [H.step_input(n, i) for i in chunk]
            prompts = [H.prompt_ids(x) for x in xs]  # step 0's is shorter: left-pad
            w = max(map(len, prompts))
            ids = torch.tensor([[H.PAD] * (w - len(p)) + p for p in prompts])
            mask = torch.tensor([[0] * (w - len(p)) + [1] * len(p) for p in prompts])
            out = model.generate(input_ids=ids, attention_mask=mask,
                                 do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                 num_return_sequences=a.samples, max_new_tokens=4 * n + 30,
                                 eos_token_id=H.EOS, pad_token_id=H.PAD)
            gen = out[:, ids.shape[1]:].tolist()
            for j, x in enumerate(xs):
                want = task.reference(x).key
                ok = 0
                for row in gen[j * a.samples:(j + 1) * a.samples]:
                    _, sep, answer = H.decode(row).partition("</think>")
                    got = parse_compact(answer, n) if sep else None
                    ok += bool(got is not None and getattr(got, "key", None) == want)
                right.append(ok)
        return right

    torch.manual_seed(a.seed)
    extra = extra_steps(a.extra)
    t0 = time.time()
    rows, weak = [], []
    for n in H.disk_list(a.disks):
        steps, how = steps_for(n, a, extra.get(n, set()))
        ps, greedy = H.measure(model, torch, n, steps, 1.0, a.batch, "think")
        low = [j for j, p in enumerate(ps) if p < a.resample_below]
        right = dict(zip(low, sampled(n, [steps[j] for j in low])))
        vote = [right[j] / a.samples if j in right else ps[j] for j in range(len(steps))]
        hopeless = [j for j in low if right[j] <= a.samples / 2]
        worst = sorted(range(len(steps)), key=lambda j: vote[j])[:20]
        row = {"disks": n, "size": n, "checked": len(steps), "chosen": how,
               "mean_exact_p": sum(ps) / len(ps), "min_exact_p": min(ps),
               "greedy_wrong": len(greedy) - sum(greedy), "resampled": len(low),
               "samples": a.samples, "hopeless": len(hopeless),
               "below_0.9": sum(v < 0.9 for v in vote), "min_vote_p": min(vote),
               "worst": [{"step": steps[j], "exact_p": round(ps[j], 4),
                          "right": right.get(j), "greedy": greedy[j]} for j in worst
                         if vote[j] < a.resample_below]}
        if n in extra:
            row["extra"] = [{"step": steps[j], "exact_p": round(ps[j], 4),
                             "right": right.get(j), "greedy": greedy[j]}
                            for j in range(len(steps)) if steps[j] in extra[n]]
        rows.append(row)
        weak += [{"disks": n, "step": steps[j], "p": round(vote[j], 4)}
                 for j in range(len(steps)) if vote[j] < a.resample_below]
        print(f"n={n:2d} checked={len(steps):6d} ({how.split(' ')[0]})  mean exact "
              f"p_i={row['mean_exact_p']:.4f}  greedy wrong {row['greedy_wrong']}  "
              f"vote p_i<0.9: {row['below_0.9']}  hopeless (<= {a.samples // 2}/{a.samples} "
              f"right): {row['hopeless']}  min vote p_i {row['min_vote_p']:.2f}  "
              f"({time.time() - t0:.0f} s)", flush=True)
        write(a, argv, rows, weak, time.time() - t0)  # after every n: a long run shows
    total = sum(r["hopeless"] for r in rows)
    print(f"{sum(r['checked'] for r in rows)} steps checked, {total} hopeless; "
          f"{time.time() - t0:.0f} s")
    return 0


def write(a, argv, rows: list[dict], weak: list[dict], seconds: float) -> None:
    if a.out:
        Path(a.out).write_text(json.dumps({
            "model": Path(a.model).name, "temperature": 1.0, "seed": a.seed,
            "resample_below": a.resample_below, "samples": a.samples,
            "command": "models/hanoi-think/check.py " + " ".join(argv or sys.argv[1:]),
            "seconds": round(seconds, 1), "rows": rows}, indent=1) + "\n")
    if a.weak_out:
        Path(a.weak_out).write_text(json.dumps({"model": Path(a.model).name,
                                                "weak": weak}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
