"""The mul-step model card: exhaustive over all 10,000 inputs (transformers, float32).

For every input (a, b, c, k): the exact probability p_i that one sample at T=1 is exactly the
right answer (teacher-forced product of the answer tokens' probabilities, </s> included), and
whether greedy generation (model.generate, do_sample=False) writes exactly the right answer.
Prompts go through the exported tokenizer's chat template (checked against the training
format).

    OMP_NUM_THREADS=1 python models/mul-step/evaluate.py --out models/mul-step/card.json

Since every input is enumerated, there is no sampling error: the card's "ci95" is
[p_min, p_mean], p_min being the most conservative figure for any single step.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from maker_local.recipes import mul as M

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="exhaustive card of the mul-step model")
    ap.add_argument("--model", default=str(HERE / "model"))
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "card.json"))
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(a.threads)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    xs = M.all_inputs()

    prompts = []
    for x in xs:
        ids = tok.apply_chat_template([{"role": "user", "content": M.render(*x)}],
                                      tokenize=True, add_generation_prompt=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        prompts.append(list(ids))
    assert all(p == M.prompt_ids(x) for p, x in zip(prompts, xs)), "chat template differs"

    ps, greedy_ok, tf_ok = [], [], []
    with torch.no_grad():
        for b in range(0, len(xs), a.batch):
            chunk = xs[b:b + a.batch]
            ids, _ = M.batch_tensors(chunk, torch)
            lp, ok = M.answer_logprobs(model, ids, torch)
            ps += lp.exp().tolist()
            tf_ok += ok.tolist()
            pr = torch.tensor(prompts[b:b + a.batch])  # all the same length: no padding
            gen = model.generate(input_ids=pr, attention_mask=torch.ones_like(pr),
                                 do_sample=False, max_new_tokens=M.ANSWER_LEN + 4,
                                 eos_token_id=M.EOS, pad_token_id=M.PAD)[:, pr.shape[1]:]
            for x, row in zip(chunk, gen.tolist()):
                text = tok.decode(row, skip_special_tokens=True)
                greedy_ok.append(M.EOS in row and text == M.answer(*x))
    n = len(xs)
    p_min, p_mean = min(ps), sum(ps) / n
    order = sorted(range(n), key=lambda i: ps[i])
    worst = [{"prompt": M.render(*xs[i]), "answer": M.answer(*xs[i]), "p": ps[i],
              "greedy_right": greedy_ok[i]} for i in order[:10]]
    card = {"model": "mul-step/model", "task": "multiply", "dtype": "float32",
            "temperature": 1.0, "inputs": n, "greedy_right": sum(greedy_ok),
            "greedy_teacher_forced_agree": sum(g == t for g, t in zip(greedy_ok, tf_ok)),
            "p_min": p_min, "p_mean": p_mean,
            "below_0.99": sum(p < 0.99 for p in ps), "below_0.999": sum(p < 0.999 for p in ps),
            "ci95_note": "exhaustive over all inputs: ci95 = [p_min, p_mean] (p_min the most "
                         "conservative figure for any single step)",
            "rows": [{"size": "all", "steps": n, "p": p_mean, "ci95": [p_min, p_mean],
                      "p_exact_by_temperature": {"1.0": p_mean}, "min_exact_pi": p_min}],
            "worst": worst, "seconds": round(time.time() - t0, 1)}
    print(f"{n} inputs: greedy right {card['greedy_right']}, p_min {p_min:.6f}, "
          f"p_mean {p_mean:.6f}, below .99 {card['below_0.99']}, below .999 "
          f"{card['below_0.999']} ({card['seconds']}s)")
    for w in worst[:5]:
        print(f"  {w['prompt']} -> {w['answer']}  p {w['p']:.6f}")
    if a.out:
        Path(a.out).write_text(json.dumps(card, indent=2) + "\n")
        print(f"wrote {a.out}")
        # the class table k auto reads (maker_local.analysis.accuracy.card_classes): every
        # input is a class with its exact p_i; the task counts how many of a run's steps each
        # class has
        classes = {"task": "multiply", "temperature": 1.0, "note": "one class per input "
                   "a,b,c,k: its exact p_i at T=1; class_steps come from the run's task",
                   "classes": [{"size": "all", "class": ",".join(map(str, x)),
                                "p": [round(p, 9)]} for x, p in zip(xs, ps)]}
        path = Path(a.out).with_name("card_classes.json")
        path.write_text(json.dumps(classes, separators=(",", ":")) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
