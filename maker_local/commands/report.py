"""`maker-local report`: summarise a run from its ledger (and write plots).

`--html` also writes a self-contained report.html; `--rule` replays the run's recorded votes
under another voting rule instead of printing the summary.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..core.errors import UsageError
from . import checks


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = checks.HelpFormatter
    p.add_argument("run_dir", type=checks.path, help="a run dir written by maker-local solve")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--html", action="store_true",
                   help="also write report.html (one self-contained page) and print its path")
    p.add_argument("--rule", action="append", default=[], metavar="RULE[:K]",
                   help="replay the recorded votes under this rule (first-to-k or ahead-by-k), "
                   "with its own k after a colon or --k; repeatable")
    p.add_argument("--k", type=checks.at_least(1), default=None,
                   help="k for --rule without one (default: the run's k)")


def main(args: argparse.Namespace) -> int:
    from ..driver.report import build_report, format_report, write_report
    from ..store import LedgerError

    try:
        if args.rule:
            return _replay(args)
        report = build_report(args.run_dir)
    except LedgerError as e:
        raise UsageError(str(e)) from None
    if report["ledger"]["verified"] is False:
        raise UsageError(f"{args.run_dir} was altered after it was written: "
                         f"{report['ledger']['problem']}; no report is made from it: restore "
                         "the ledger from a copy")
    print(json.dumps(report, indent=2) if args.json else format_report(report), flush=True)
    try:
        files = write_report(args.run_dir, report)
        print("wrote " + ", ".join(f.name for f in files), file=sys.stderr)
        if args.html:
            from ..analysis.htmlreport import write_html

            path = write_html(args.run_dir)
            # stdout stays pure JSON with --json
            print(path, file=sys.stderr if args.json else sys.stdout)
    except OSError as e:
        raise UsageError(f"the report is above, but its files cannot be written in "
                         f"{args.run_dir} ({e.strerror or e}): copy the run dir somewhere "
                         "writable to get report.json and the plots") from None
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ..analysis.replay import format_replay, parse_rule, replay
    from ..store import Ledger

    led = Ledger.read(args.run_dir)
    try:
        k_run = int(led.config["run"]["k"])
    finally:
        led.close()
    try:
        rules = [parse_rule(r, args.k or k_run) for r in args.rule]
    except ValueError as e:
        raise UsageError(str(e)) from None
    result = replay(args.run_dir, rules)
    print(json.dumps(result) if args.json else format_replay(result))
    return 0
