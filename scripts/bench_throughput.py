"""Throughput of the bundled step model on 20-disk steps: today's configuration against the
draft-sampling one, on the same requests, in one run.

The requests are the first round of a real `maker-local solve` over a window of steps (each
step: its greedy first vote, n=1 at T=0, and k-1 votes at the profile's temperature, as one
n-sample request), taken from the middle of the run. Both configurations are in-process vLLM
with the same model and dtype:

- baseline: plain decoding of every sample (`llm.generate` with n-sampling; the engine
  defaults), the configuration of the project before draft sampling;
- draft: each step's votes drawn against its draft answer from one prefill (voting/draft.py),
  with the engine settings that the draft backend uses.

They alternate (baseline, draft, baseline, draft, ...) so that a machine whose load changes
treats both alike. Printed: samples/s of each, the ratio, and the share of samples equal to the
reference (both draw from the same distribution, so these agree up to sampling noise).

    python scripts/bench_throughput.py                     # 20 disks, 1,500 steps, k=3
    python scripts/bench_throughput.py --steps 3000 --repeats 3 --out results/throughput.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "hanoi-step" / "model"))
    ap.add_argument("--disks", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1500, help="steps in the window")
    ap.add_argument("--start", type=int, default=None,
                    help="first step (default: the middle of the run)")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default="", help="also write the results as JSON here")
    return ap.parse_args(argv)


def round_requests(a: argparse.Namespace):
    from maker_local.voting.schedule import Schedule, VoteConfig
    from maker_local.voting.seeds import Temperatures
    from maker_local.tasks.hanoi import Hanoi

    task = Hanoi(a.disks, style="compact")
    start = (task.num_steps() // 2 - a.steps // 2) if a.start is None else a.start
    cfg = VoteConfig(k=a.k, max_tokens=64, temperatures=Temperatures(0.0, a.temperature),
                     constrained=False, drafts=True, window=a.steps)
    # the schedule renders the prompts now, outside the timed part (the same for both)
    reqs = Schedule(task, cfg, "rounds", start, start + a.steps).next_batch()
    return task, start, reqs


def timed(backend, reqs) -> tuple[float, list]:
    t0 = time.perf_counter()
    out = backend.sample(reqs)
    return time.perf_counter() - t0, out


def right_share(task, reqs, results) -> float:
    good = total = 0
    for r, samples in zip(reqs, results):
        for s in samples:
            total += 1
            got = task.parse(s.text, r.x) if s.finish_reason == "stop" else None
            good += bool(got is not None and getattr(got, "key", None)
                         == task.reference(r.x).key)
    return good / max(1, total)


def main(argv=None) -> int:
    a = parse_args(argv)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    from maker_local.backends.vllm import VLLMBackend

    task, start, reqs = round_requests(a)
    n_samples = sum(r.n for r in reqs)
    print(f"{len(reqs):,} requests, {n_samples:,} samples: round 1 of steps {start:,}.."
          f"{start + a.steps - 1:,} of the {a.disks}-disk run, k={a.k}", file=sys.stderr)
    configs = {"baseline": VLLMBackend(a.model, dtype="float32"),
               "draft": VLLMBackend(a.model, dtype="float32", draft_sampling=True)}
    warm = reqs[:64]
    for be in configs.values():
        be.sample(warm)
    times: dict[str, list[float]] = {name: [] for name in configs}
    right: dict[str, list[float]] = {name: [] for name in configs}
    for rep in range(a.repeats):
        for name, be in configs.items():
            dt, out = timed(be, reqs)
            times[name].append(dt)
            right[name].append(right_share(task, reqs, out))
            print(f"  repeat {rep + 1}: {name:8s} {dt:7.2f} s  {n_samples / dt:8.1f} samples/s",
                  file=sys.stderr)
    stats = configs["draft"].draft_stats
    for be in configs.values():
        be.close()
    rate = {name: n_samples * len(t) / sum(t) for name, t in times.items()}
    ratio = rate["draft"] / rate["baseline"]
    print("\n| configuration | samples/s | seconds per pass | share right |")
    print("|---|---|---|---|")
    for name in configs:
        print(f"| {name} | {rate[name]:.1f} | {sum(times[name]) / len(times[name]):.2f} | "
              f"{sum(right[name]) / len(right[name]):.4f} |")
    kept = stats["kept"] / max(1, stats["kept"] + stats["decoded"])
    print(f"\nratio draft / baseline: {ratio:.2f}  (samples kept on the draft: {kept:.2%}, "
          f"prefills {stats['prefills']:,})")
    result = {"bench": "throughput", "disks": a.disks, "start": start, "steps": a.steps,
              "k": a.k, "requests": len(reqs), "samples": n_samples, "repeats": a.repeats,
              "samples_per_s": rate, "ratio": ratio, "seconds": times, "share_right": right,
              "draft_kept_share": kept, "model": Path(a.model).name,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "date": time.strftime("%Y-%m-%d")}
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
