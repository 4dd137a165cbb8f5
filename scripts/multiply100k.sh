#!/usr/bin/env bash
# The second task's long run: a 1,000-digit by 100-digit product (100,000 single-digit steps)
# with the bundled multiply step model (the task's embedded default, models/mul-step),
# resumed from its ledger after every interruption (scripts/resumable.sh), then its report.
#   bash scripts/multiply100k.sh [run-dir]     (default runs/multiply-100000)
#   nohup bash scripts/multiply100k.sh > multiply100k.log 2>&1 &
exec bash "$(dirname "$0")/resumable.sh" "${1:-runs/multiply-100000}" --task multiply \
    --digits 1000x100
