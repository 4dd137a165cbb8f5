#!/usr/bin/env bash
# One vLLM server per GPU for a model profile (default gpt-oss-20b), on 127.0.0.1:8000, 8001, ...
#   serving/gpu.sh                      # gpt-oss-20b on GPU 0
#   GPUS=0,1,2,3 serving/gpu.sh qwen3-4b-instruct
#   serving/gpu.sh gpt-oss-20b --dummy-weights   # random weights, nothing downloaded
# Extra arguments go to `maker-local serve`. Ctrl-C stops every server.
set -euo pipefail
profile="${1:-gpt-oss-20b}"
shift || true
exec maker-local serve --profile "$profile" --gpus "${GPUS:-0}" --port "${PORT:-8000}" "$@"
