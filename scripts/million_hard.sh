#!/usr/bin/env bash
# The levers' million-step run (issue 17): all 1,048,575 steps of 20 disks with hanoi-step v2.2
# as the main voter, a model that is confidently wrong at steps 315,391 and 708,607, plus a
# second opinion (hanoi-step, v2.3, votes in turn with it) and an escalation (the steps the two
# disagree on are decided by hanoi-step's votes alone: the stronger model has the last word;
# hanoi-think, which fails elsewhere, claims 8..9 disks only), resumed from its ledger after
# every interruption.
#   bash scripts/million_hard.sh [run-dir]          (default runs/hanoi-20-hard)
#   nohup bash scripts/million_hard.sh > million_hard.log 2>&1 &
exec bash "$(dirname "$0")/resumable.sh" "${1:-runs/hanoi-20-hard}" --disks 20 \
  --profile hanoi-step-v2.2 --k 3 --second-opinion hanoi-step --escalate hanoi-step \
  --window 16384
