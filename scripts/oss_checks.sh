#!/usr/bin/env bash
# The gpt-oss rehearsal, every path, as one script: the bundled gpt-oss-architecture model
# (models/hanoi-oss) in process and behind a real server, its tests, and the loop against the
# bare engine. Runs from the repository alone (the model is in it; its full weights and
# tokenizer are built from git and from packages vLLM already brings), on this CPU or on a
# GPU machine with no internet (GPU.md). Writes everything under OUT (default
# runs/oss-checks): logs, the runs' report.json, bench_engines' JSON lines, a summary.
#   bash scripts/oss_checks.sh [OUT]
set -u
cd "$(dirname "$0")/.."
out=${1:-runs/oss-checks}
mkdir -p "$out"
py=.venv/bin/python
ml=.venv/bin/maker-local
[ -x "$py" ] || py=python3
[ -x "$ml" ] || ml="$py -m maker_local.cli"
say() { echo "oss_checks: $*" | tee -a "$out/summary.txt" >&2; }
port=${OSS_PORT:-8123}
if "$py" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
  where=(--gpus 0); device=gpu
else
  where=(--cpu); device=cpu
fi
say "$(date -u +%FT%TZ) device $device, vllm $("$py" -c 'import vllm; print(vllm.__version__)' 2>&1 | tail -1)"

# 1. the model folder: full weights and o200k_harmony tokenizer (nothing when up to date)
"$py" models/hanoi-oss/build.py >>"$out/build.log" 2>&1 || { say "build failed: $out/build.log"; exit 1; }

# 2. the tests of this path (pure ones and both engines)
"$py" -m pytest -q tests/models/test_oss.py >"$out/pytest.log" 2>&1
say "tests/models/test_oss.py: $(tail -1 "$out/pytest.log")"

# 3. in process: the 10-disk solve
$ml solve --profile hanoi-oss --backend vllm --disks 10 --run-dir "$out/inproc" --json \
  >"$out/inproc.json" 2>"$out/inproc.log"
say "in process, 10 disks: exit $? ($("$py" -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['steps']['decided'], 'decided,', r['steps']['errors'], 'errors,', r['samples']['total'], 'samples')" "$out/inproc.json" 2>/dev/null))"

# 4. served: `maker-local serve`, then the same solve over HTTP
$ml serve --profile hanoi-oss "${where[@]}" --port "$port" --log-dir "$out/serve" \
  >"$out/serve.log" 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null; wait $serve 2>/dev/null' EXIT
url=http://127.0.0.1:$port/v1
$ml solve --profile hanoi-oss --backend vllm-http --base-url "$url" --disks 10 \
  --run-dir "$out/served" --json >"$out/served.json" 2>"$out/served.log"
say "served, 10 disks: exit $? ($("$py" -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['steps']['decided'], 'decided,', r['steps']['errors'], 'errors,', r['samples']['total'], 'samples')" "$out/served.json" 2>/dev/null))"

# 5. the loop against the bare engine, in process and over HTTP (a benchmark: ratios)
"$py" scripts/bench_engines.py --profile hanoi-oss --disks 8 --which both --base-url "$url" \
  >"$out/bench_engines.txt" 2>"$out/bench_engines.log"
say "bench_engines: $(tail -1 "$out/bench_engines.txt")"
say "done: $out"
