"""Benchmark: the million-step Hanoi solve on the sim backend, end to end.

Runs `maker-local solve --task hanoi --disks N --backend sim --k 3 --sim-error 0.0022
--sim-valid 0.97` as a user would (a subprocess: CLI, schedule, sim, SQLite ledger, report) and
measures its wall time, CPU time and peak memory. Baselines measured in the same run, on the same
machine: the same voting loop in memory with no ledger (what the ledger costs), and the bare
sim producing the same number of samples with no voting at all (what MAKER's bookkeeping
costs). Prints a table, then one JSON line.

    python scripts/bench_sim.py            # 20 disks, 1,048,575 steps
    python scripts/bench_sim.py --disks 16 # a quicker look
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def solve_subprocess(disks: int, run_dir: Path, extra: list[str]
                     ) -> tuple[float, float, float, dict]:
    cmd = [sys.executable, "-m", "maker_local.cli", "solve", "--task", "hanoi", "--disks",
           str(disks), "--backend", "sim", "--k", "3", "--sim-error", "0.0022", "--sim-valid",
           "0.97", "--run-dir", str(run_dir), "--quiet", "--json", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the solve (user + system): on a machine shared with other work, the
    # wall time also holds the time the solve waited for a core
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode not in (0, 1):
        sys.exit(f"solve failed: {out.stderr.strip()}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak_mib, cpu, json.loads(out.stdout)


def in_memory(disks: int) -> tuple[float, int, list]:
    """The same schedule and sim with no ledger, no progress bar, no report."""
    from maker_local.backends.sim import SimBackend, SimModel
    from maker_local.voting.schedule import Schedule, VoteConfig
    from maker_local.tasks.hanoi import Hanoi

    task = Hanoi(disks)
    sched = Schedule(task, VoteConfig(k=3, prompts=False))  # as solve does for the sim
    sim = SimBackend(task, SimModel(error=0.0022, valid=0.97))
    t0 = time.perf_counter()
    samples, requests = 0, []
    while not sched.finished:
        reqs = sched.next_batch()
        samples += sched.accept(reqs, sim.sample(reqs)).n_samples
        if len(requests) < 3:
            requests.append(reqs)
    return time.perf_counter() - t0, samples, requests[0]


def bare_sim(requests: list, samples: int) -> float:
    """The sim alone producing `samples` samples from the first round's requests."""
    from maker_local.backends.sim import SimBackend, SimModel
    from maker_local.tasks.hanoi import Hanoi

    sim = SimBackend(Hanoi(requests[0].x.disks), SimModel(error=0.0022, valid=0.97))
    per_call = sum(r.n for r in requests)
    t0 = time.perf_counter()
    made = 0
    while made < samples:
        sim.sample(requests)
        made += per_call
    return (time.perf_counter() - t0) * samples / made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--disks", type=int, default=20)
    ap.add_argument("--keep", type=Path, default=None, help="keep the run dir here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.keep or Path(tmp) / "run"
        wall, peak, cpu, report = solve_subprocess(args.disks, run_dir, [])
        ledger_mib = (run_dir / "ledger.sqlite").stat().st_size / 2**20
    mem_wall, samples, first = in_memory(args.disks)
    sim_wall = bare_sim(first, samples)
    steps = report["steps"]
    rows = [
        ("steps decided / total", f"{steps['decided']:,} / {steps['total']:,}"),
        ("errors vs reference", f"{steps['errors']}"),
        ("samples (red-flagged)", f"{report['samples']['total']:,} "
                                  f"({report['samples']['flagged']:,})"),
        ("votes/step mean, max", f"{report['votes_per_step']['mean']:.3f}, "
                                 f"{report['votes_per_step']['max']:g}"),
        ("solve wall (CLI, ledger, report)", f"{wall:.1f} s"),
        ("  steps/s", f"{steps['total'] / wall:,.0f}"),
        ("  CPU time (user + system)", f"{cpu:.1f} s"),
        ("  peak RSS", f"{peak:.0f} MiB"),
        ("  ledger size", f"{ledger_mib:.0f} MiB"),
        ("baseline: voting in memory", f"{mem_wall:.1f} s  (solve/baseline {wall / mem_wall:.2f})"),
        ("baseline: bare sim, same samples", f"{sim_wall:.1f} s  (solve/baseline "
                                             f"{wall / sim_wall:.2f})"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(json.dumps({"bench": "sim-solve", "disks": args.disks, "steps": steps["total"],
                      "errors": steps["errors"], "samples": report["samples"]["total"],
                      "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                      "peak_rss_mib": round(peak),
                      "ledger_mib": round(ledger_mib), "in_memory_s": round(mem_wall, 2),
                      "bare_sim_s": round(sim_wall, 2),
                      "ratio_vs_in_memory": round(wall / mem_wall, 3),
                      "ratio_vs_bare_sim": round(wall / sim_wall, 3)}))


if __name__ == "__main__":
    main()
