"""Benchmark: vLLM's structured-output engines against unconstrained sampling, same requests.

For each model profile (default: the bundled hanoi-step and the reasoning stand-in
hanoi-think) and each grammar backend (xgrammar, guidance, outlines, lm-format-enforcer) and
unconstrained decoding, one in-process vLLM engine (its own subprocess, started fresh)
answers the same requests: random steps of the given disk counts, n samples each, at the
profile's later-vote temperature, fixed seeds, plain decoding (no draft sampling). Measured:
samples/s (wall time of the sampling calls, the engine's load and one warm-up call excluded),
the valid rate (samples that pass the red flags) and p (share right among valid samples).
Prints a table, then one JSON line.

    python scripts/bench_grammar.py                       # both models, every backend
    python scripts/bench_grammar.py --profiles hanoi-step --steps 100 --out /tmp/g.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKENDS = ("xgrammar", "guidance", "outlines", "lm-format-enforcer", "none")


def one(profile_name: str, grammar: str, disks: list[int], steps: int, n: int,
        seed: int) -> dict:
    """One engine, one configuration: the measurement as a dict (runs in a subprocess)."""
    import numpy as np

    from maker_local.backends.vllm import VLLMBackend
    from maker_local.core.types import SampleRequest
    from maker_local.voting.redflags import classify
    from maker_local.voting.seeds import sample_seed
    from maker_local.models.profiles import load_profile
    from maker_local.tasks.base import Parsed
    from maker_local.tasks.hanoi import Hanoi

    prof = load_profile(profile_name)
    dtype = (prof.serve_args[prof.serve_args.index("--dtype") + 1]
             if "--dtype" in prof.serve_args else None)
    be = VLLMBackend(prof.model, api=prof.api, dtype=dtype,
                     grammar_backend="xgrammar" if grammar == "none" else grammar,
                     reasoning_parser=prof.reasoning_parser,
                     chat_template_kwargs=prof.chat_template_kwargs)
    rng = np.random.default_rng(seed)
    reqs, tasks = [], []
    for d in disks:
        task = Hanoi(d, style=prof.prompt_style)
        for step in sorted(rng.choice(task.num_steps(), steps, replace=False).tolist()):
            x = task.input_at(step)
            reqs.append(SampleRequest(step, x, task.render(x), n, prof.temperature,
                                      prof.max_tokens, sample_seed(seed, step, 0),
                                      None if grammar == "none" else task.constraint(x)))
            tasks.append(task)
    be.sample(reqs[:8])  # warm-up: compile the grammar, first engine steps
    t0 = time.perf_counter()
    results = be.sample(reqs)
    wall = time.perf_counter() - t0
    total = valid = right = errors = reasoning = out = 0
    for task, req, samples in zip(tasks, reqs, results):
        ref = task.reference(req.x).key
        for s in samples:
            total += 1
            errors += s.finish_reason == "error"
            got = classify(s, task, req.x)
            if isinstance(got, Parsed):
                valid += 1
                right += got.key == ref
            reasoning += s.tokens_reasoning
            out += s.tokens_out
    be.close()
    return {"profile": profile_name, "grammar": grammar, "samples": total, "errors": errors,
            "wall_s": wall, "samples_per_s": total / wall, "valid_rate": valid / total,
            "p": right / valid if valid else None, "tokens_out_mean": out / total,
            "tokens_reasoning_mean": reasoning / total}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profiles", default="hanoi-step,hanoi-think")
    ap.add_argument("--backends", default=",".join(BACKENDS),
                    help="grammar backends; 'none' is unconstrained decoding")
    ap.add_argument("--disks", default="10,20", help="disk counts of the random steps")
    ap.add_argument("--steps", type=int, default=200, help="random steps per disk count")
    ap.add_argument("--n", type=int, default=2, help="samples per step")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    ap.add_argument("--one", nargs=2, metavar=("PROFILE", "GRAMMAR"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    disks = [int(d) for d in a.disks.split(",")]
    if a.one:
        print("RESULT " + json.dumps(one(a.one[0], a.one[1], disks, a.steps, a.n, a.seed)))
        return 0
    rows = []
    for prof in a.profiles.split(","):
        for g in a.backends.split(","):
            cmd = [sys.executable, __file__, "--one", prof, g, "--disks", a.disks,
                   "--steps", str(a.steps), "--n", str(a.n), "--seed", str(a.seed)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                tail = (r.stderr.strip().splitlines() or ["?"])[-1]
                rows.append({"profile": prof, "grammar": g, "failed": tail[-300:]})
            else:
                rows.append(json.loads(line[7:]))
            print(f"  {prof} {g}: {rows[-1].get('samples_per_s', rows[-1].get('failed'))}",
                  file=sys.stderr, flush=True)
    import vllm  # noqa: F401  (its version, for the record)
    meta = {"date": time.strftime("%Y-%m-%d"), "vllm": sys.modules["vllm"].__version__,
            "disks": disks, "steps_per_disk": a.steps, "n": a.n, "seed": a.seed}
    print(f"{'profile':<12} {'grammar':<19} {'samples/s':>9} {'ratio':>6} {'valid':>7} "
          f"{'p':>7} {'thought':>7} {'out tok':>7}")
    for prof in a.profiles.split(","):
        base = next((r for r in rows if r["profile"] == prof and r["grammar"] == "none"
                     and "failed" not in r), None)
        for r in (r for r in rows if r["profile"] == prof):
            if "failed" in r:
                print(f"{prof:<12} {r['grammar']:<19} failed: {r['failed']}")
                continue
            ratio = r["samples_per_s"] / base["samples_per_s"] if base else float("nan")
            r["ratio_to_unconstrained"] = ratio
            p = "-" if r["p"] is None else f"{r['p']:.4f}"
            print(f"{prof:<12} {r['grammar']:<19} {r['samples_per_s']:9.1f} {ratio:6.2f} "
                  f"{r['valid_rate']:7.4f} {p:>7} {r['tokens_reasoning_mean']:7.1f} "
                  f"{r['tokens_out_mean']:7.1f}")
    result = {"meta": meta, "rows": rows}
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
