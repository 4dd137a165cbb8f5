"""Coverage of the estimators' 95% intervals against known truths (issue 28).

Draws calibrations (steps x samples) and ahead-by-k runs from a per-step distribution with
set parameters (`maker_local.analysis.coverage`), runs calibrate's, report's and bench's
estimators as the commands do, and prints a table of how often each stated 95% interval
covered the truth, then one JSON line. The CI test (tests/analysis/test_coverage.py) runs a small
version of this sweep.

    python scripts/coverage.py --seeds 40 --out results/coverage/coverage.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from maker_local.analysis.coverage import cell
from maker_local.voting.steperrors import StepErrors

NAMES = ("calibrate p", "calibrate rho", "calibrate collisions",
         "calibrate hopeless <= at_most", "report rho", "bench rho", "bench collisions",
         "bench hopeless <= at_most")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=40, help="draws per setting")
    p.add_argument("--rho", default="0,0.01,0.05,0.2")
    p.add_argument("--error", default="0.002,0.01,0.05")
    p.add_argument("--hopeless", default="0,0.005", help="shares of steps at p_i = 0.3")
    p.add_argument("--steps", type=int, default=2000, help="calibration steps (x10 samples)")
    p.add_argument("--run-steps", type=int, default=20000, help="steps of each k=3 run")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here")
    a = p.parse_args()
    rows, t0 = [], time.time()
    for h in (float(x) for x in a.hopeless.split(",")):
        for rho in (float(x) for x in a.rho.split(",")):
            for e in (float(x) for x in a.error.split(",")):
                rows.append(cell(StepErrors(e, rho, h, 0.3), a.seeds, steps=a.steps,
                                 run_steps=a.run_steps, seed=len(rows)))
    head = f"{'error':>6} {'rho':>5} {'hopel':>6} " + " ".join(f"{n[:14]:>14}" for n in NAMES)
    print(head)
    for r in rows:
        print(f"{r['error']:>6g} {r['rho']:>5g} {r['hopeless']:>6g} "
              + " ".join(f"{r['coverage'].get(n, float('nan')):>14.2f}" for n in NAMES))
    total = {n: sum(r["coverage"][n] * r["intervals"][n] for r in rows)
             / sum(r["intervals"][n] for r in rows) for n in NAMES}
    print(f"{'all':>20} " + " ".join(f"{total[n]:>14.3f}" for n in NAMES))
    out = {"seeds": a.seeds, "steps": a.steps, "run_steps": a.run_steps,
           "seconds": round(time.time() - t0, 1), "overall": total, "cells": rows}
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({"overall": total, "seconds": out["seconds"]}))


if __name__ == "__main__":
    main()
