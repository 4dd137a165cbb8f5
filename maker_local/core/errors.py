"""Errors a user can fix; each message says how."""


class UsageError(Exception):
    """A mistake in what the user asked for (exit code 2)."""


def did_you_mean(name: object, known: "list[str] | tuple[str, ...]") -> str:
    """' (did you mean 'x'?)' when `name` is close to one of `known`, else ''."""
    import difflib
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, name: object, known: "list[str] | tuple[str, ...]") -> str:
    """'unknown backend 'simm' (did you mean 'sim'?); available: sim, vllm, ...'"""
    return f"unknown {kind} {name!r}{did_you_mean(name, known)}; available: {', '.join(known)}"
