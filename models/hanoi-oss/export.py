"""Export a hanoi-oss training checkpoint to the Hugging Face folder models/hanoi-oss/model/.

    PYTHONPATH=. python models/hanoi-oss/export.py \
        --ckpt runs/hanoi-oss-ckpt/last.pt --out models/hanoi-oss/model

Writes config.json (GptOssForCausalLM, the full 201,088-id vocabulary), generation_config.json
and chat_template.jinja into the folder, and beside it weights.safetensors (bfloat16: the
trained parameters, embedding and output rows only for the ids the task uses) and
train_info.json. `python models/hanoi-oss/build.py` (run by scripts/setup.sh) then writes the
folder's model.safetensors and tokenizer files, which stay out of git. The work is
maker_local.recipes.hanoi_oss.export.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maker_local.recipes import hanoi_oss as O

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export hanoi-oss to a HF folder")
    ap.add_argument("--ckpt", default="runs/hanoi-oss-ckpt/last.pt")
    ap.add_argument("--out", default=str(HERE / "model"))
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    a = ap.parse_args(argv)
    info = O.export(a.ckpt, a.out, a.dtype)
    print(f"exported step {info['step']} ({info['params_trained']:,} trained parameters, "
          f"{info['params_full']:,} with the full vocabulary) to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
