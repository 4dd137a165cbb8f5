"""Export a training checkpoint to the Hugging Face folder models/hanoi-step/model/.

    PYTHONPATH=. python models/hanoi-step/export.py \
        --ckpt runs/hanoi-step-ckpt/last.pt --out models/hanoi-step/model

Writes config.json, model.safetensors (float32), generation_config.json, tokenizer.json,
tokenizer_config.json (with the chat template), special_tokens_map.json and
chat_template.jinja; the folder loads with AutoModelForCausalLM / AutoTokenizer offline.
The work is maker_local.recipes.hanoi.export.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maker_local.recipes import hanoi as H

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export hanoi-step to a HF folder")
    ap.add_argument("--ckpt", default="runs/hanoi-step-ckpt/last.pt")
    ap.add_argument("--out", default=str(HERE / "model"))
    ap.add_argument("--variant", choices=H.VARIANTS, default="",
                    help="tokenizer variant (default: the one the checkpoint was trained as)")
    a = ap.parse_args(argv)
    info = H.export(a.ckpt, a.out, a.variant)
    print(f"exported step {info['step']} ({info['params']} params) to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
