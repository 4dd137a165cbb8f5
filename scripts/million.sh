#!/usr/bin/env bash
# The headline run: all 1,048,575 steps of 20-disk Towers of Hanoi with the bundled step model
# (the embedded default: `maker-local solve --disks 20`), resumed from its ledger after every
# interruption (scripts/resumable.sh), then its report with plots and the HTML page.
#   bash scripts/million.sh [run-dir]          (default runs/hanoi-20)
# Start it in the background on a machine you keep using:
#   nohup bash scripts/million.sh > million.log 2>&1 &
exec bash "$(dirname "$0")/resumable.sh" "${1:-runs/hanoi-20}" --disks 20
