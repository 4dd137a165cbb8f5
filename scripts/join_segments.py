"""The report of a run done in segments (`solve --steps A:B` one after another, e.g.
scripts/million_hard.sh): every segment's report.json in a folder, joined into one report of
the whole run, with its plots, after checking that the segments make one run (they tile all
steps, are finished and verified, and decided every step right: maker_local/analysis/segments.py).

    .venv/bin/python scripts/join_segments.py results/hanoi-20-hard-cpu/segments \
        --out results/hanoi-20-hard-cpu/report.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maker_local.driver.report import format_report, plot  # noqa: E402
from maker_local.analysis.segments import SegmentError, join  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="the segments' report.json files (*.json)")
    p.add_argument("--out", type=Path, required=True, help="the joined report (JSON); its "
                   "plots go beside it")
    args = p.parse_args()
    files = sorted(args.folder.glob("*.json"))
    try:
        joined = join([json.loads(f.read_text()) for f in files])
    except SegmentError as e:
        print(f"join_segments: {e}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(joined, indent=2) + "\n")
    plot(args.out.parent, joined)
    print(format_report(joined))
    print(f"{len(files)} segments joined: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
