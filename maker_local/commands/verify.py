"""`maker-local verify`: check a run's ledger as a certificate (see `maker_local.analysis.verify`).

Exit code 0 when the ledger holds up, 1 when something was altered (the first affected step
is named), 2 when it cannot be read.
"""
from __future__ import annotations

import argparse
import json

from ..core.errors import UsageError
from . import checks


def add_cli_args(p: argparse.ArgumentParser) -> None:
    p.formatter_class = checks.HelpFormatter
    p.add_argument("run_dir", type=checks.path, help="a run dir written by maker-local solve")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def main(args: argparse.Namespace) -> int:
    from ..analysis.verify import format_verify, verify
    from ..store import LedgerError

    try:
        result = verify(args.run_dir)
    except LedgerError as e:
        raise UsageError(str(e)) from None
    print(json.dumps(result) if args.json else format_verify(result))
    return 0 if result["ok"] else 1
