#!/usr/bin/env bash
# A long solve that survives interruptions: `maker-local solve` with the flags given, into
# RUN_DIR, taken up again from its ledger with --resume after every interruption until it is
# done, then its report with plots and the HTML page. Rerun it after a reboot: it resumes.
# The ledger counts the resumes.
#   bash scripts/resumable.sh RUN_DIR [solve flags ...]
set -u
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash scripts/resumable.sh RUN_DIR [solve flags ...]" >&2; exit 2; }
run=$1
shift
ml=.venv/bin/maker-local
tries=0
while true; do
  if [ -f "$run/ledger.sqlite" ]; then resume=(--resume); else resume=(); fi
  "$ml" solve "$@" --run-dir "$run" "${resume[@]}"
  rc=$?
  case $rc in
    0|1) break ;;                       # done (1: done with errors against the reference)
    2) echo "resumable.sh: a usage or file-system error (above): fix it and rerun" >&2; exit 2 ;;
    4) echo "resumable.sh: a step is contested (above); resuming would ask the same sources" >&2; exit 4 ;;
  esac
  tries=$((tries + 1))
  if [ "$tries" -ge 50 ]; then echo "resumable.sh: 50 interruptions; giving up" >&2; exit "$rc"; fi
  echo "resumable.sh: the run stopped (exit $rc); resuming from its ledger in 10 s" >&2
  sleep 10
done
"$ml" report "$run" --html > /dev/null
echo "resumable.sh: report in $run (report.json, report.html, plots)" >&2
exit "$rc"
