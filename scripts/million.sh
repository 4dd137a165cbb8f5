#!/usr/bin/env bash
# The headline run: all 1,048,575 steps of 20-disk Towers of Hanoi with the bundled step model
# (the embedded default: `maker-local solve --disks 20`), taken up again from its ledger with
# --resume after every interruption until it is done, then its report with plots and the HTML
# page. Rerun this script after a reboot: it resumes. The ledger counts the resumes.
#   bash scripts/million.sh [run-dir]          (default runs/hanoi-20)
# Start it in the background on a machine you keep using:
#   nohup bash scripts/million.sh > million.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
run=${1:-runs/hanoi-20}
ml=.venv/bin/maker-local
tries=0
while true; do
  if [ -f "$run/ledger.sqlite" ]; then resume=(--resume); else resume=(); fi
  "$ml" solve --disks 20 --run-dir "$run" "${resume[@]}"
  rc=$?
  case $rc in
    0|1) break ;;                       # done (1: done with errors against the reference)
    2) echo "million.sh: a usage or file-system error (above): fix it and rerun" >&2; exit 2 ;;
  esac
  tries=$((tries + 1))
  if [ "$tries" -ge 50 ]; then echo "million.sh: 50 interruptions; giving up" >&2; exit "$rc"; fi
  echo "million.sh: the run stopped (exit $rc); resuming from its ledger in 10 s" >&2
  sleep 10
done
"$ml" report "$run" --html > /dev/null
echo "million.sh: report in $run (report.json, report.html, plots)" >&2
exit "$rc"
