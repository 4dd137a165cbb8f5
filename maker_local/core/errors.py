"""Errors a user can fix; each message says how."""


class UsageError(Exception):
    """A mistake in what the user asked for (exit code 2)."""
