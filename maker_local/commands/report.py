"""`maker-local report`: summarise a run from its ledger (and write plots)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UsageError


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, help="a run dir written by maker-local solve")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def main(args: argparse.Namespace) -> int:
    from ..report import build_report, format_report, write_report
    from ..store import LedgerError

    try:
        report = build_report(args.run_dir)
    except LedgerError as e:
        raise UsageError(str(e)) from None
    files = write_report(args.run_dir, report)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    print("wrote " + ", ".join(f.name for f in files), file=sys.stderr)
    return 0
