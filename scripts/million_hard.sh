#!/usr/bin/env bash
# The levers' million-step run (issue 17): all 1,048,575 steps of 20 disks with hanoi-step v2.2
# as the main voter, a model that is confidently wrong at steps 315,391 and 708,607, plus a
# second opinion (hanoi-step, v2.3, votes in turn with it) and an escalation (the steps the two
# disagree on are decided by hanoi-step's votes alone: the stronger model has the last word).
#
# It runs as 8 segments of 131,072 steps (`solve --steps A:B`), one after another. A segment
# resumes from its ledger after an interruption (scripts/resumable.sh); a finished segment's
# report (4 KB) is copied to results/hanoi-20-hard-cpu/segments/ and committed, so a later
# session on another machine goes on with the first segment that has no report. A slice starts
# from the reference input at A: the segments make one chain exactly when every segment decided
# every step right (0 errors), which scripts/join_segments.py checks before it writes the run's
# report (results/hanoi-20-hard-cpu/report.json).
#   bash scripts/million_hard.sh [run-dir]          (default runs/hanoi-20-hard)
#   nohup bash scripts/million_hard.sh > million_hard.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
run=${1:-runs/hanoi-20-hard}
out=results/hanoi-20-hard-cpu
total=1048575
size=131072
mkdir -p "$out/segments"
for ((a = 0; a < total; a += size)); do
  b=$((a + size < total ? a + size : total))
  seg=$(printf "%s/segments/%07d-%07d.json" "$out" "$a" "$b")
  if [ -f "$seg" ]; then echo "million_hard.sh: steps $a:$b done ($seg)" >&2; continue; fi
  dir=$(printf "%s/%07d-%07d" "$run" "$a" "$b")
  bash scripts/resumable.sh "$dir" --disks 20 --steps "$a:$b" \
    --profile hanoi-step-v2.2 --k 3 --second-opinion hanoi-step --escalate hanoi-step \
    --window 16384 || exit $?
  cp "$dir/report.json" "$seg"
  echo "million_hard.sh: steps $a:$b done; its report: $seg (commit it)" >&2
done
.venv/bin/python scripts/join_segments.py "$out/segments" --out "$out/report.json"
