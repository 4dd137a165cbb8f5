"""The run ledger: one SQLite file per run. Reports read it and nothing else.

All SQL against a run's tables lives here: `ledger.py` writes and resumes, `reads.py` answers
what reports, replay and verify ask, `integrity.py` checks the digest chain."""
from .ledger import Ledger, LedgerError, LEDGER_NAME

__all__ = ["Ledger", "LedgerError", "LEDGER_NAME"]
