"""The run ledger: one SQLite file per run. Reports read it and nothing else."""
from .ledger import Ledger, LedgerError, LEDGER_NAME

__all__ = ["Ledger", "LedgerError", "LEDGER_NAME"]
