"""Export a mul-step training checkpoint to the Hugging Face folder models/mul-step/model/.

    python models/mul-step/export.py --ckpt runs/mul-step-ckpt/last.pt --out models/mul-step/model

The work is hanoi-step's export (maker_local.recipes.hanoi.export: config.json with the keys
older transformers / vLLM read, float32 model.safetensors, generation_config.json, the char
tokenizer with the chat template, chat_template.jinja), run on this checkpoint; then
train_info.json (written next to the folder) gets this model's convergence record added.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maker_local.recipes import hanoi as H
from maker_local.recipes import mul as M

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export mul-step to a HF folder")
    ap.add_argument("--ckpt", default="runs/mul-step-ckpt/last.pt")
    ap.add_argument("--out", default=str(HERE / "model"))
    a = ap.parse_args(argv)
    info = H.export(a.ckpt, a.out, "step")
    print(f"exported step {info['step']} ({info['params']} params) to {a.out}")
    import torch
    st = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    out = Path(a.out)
    info_path = out.parent / "train_info.json"
    info = json.loads(info_path.read_text())
    info.update(epoch=st["epoch"], converged=bool(st.get("done")), level=st.get("level"),
                last_eval=st["history"][-1] if st["history"] else None,
                evals=len(st["history"]))
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["head_dim"] == 64 and cfg["vocab_size"] == M.VOCAB_SIZE, cfg
    print(f"train_info: epoch {info['epoch']}, converged {info['converged']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
