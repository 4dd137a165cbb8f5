"""Argument checks that run while the command line is parsed, so a wrong value is one line
(exit 2) before anything touches the disk, the network or an engine.

Each factory returns an argparse `type`: `at_least(1)`, `number(0)`, `fraction()`, ...;
argparse turns a refusal into "argument --k: must be at least 1 (got 0)".
Checks that need the file system (`check_run_dir`, `check_out_file`) say what to do.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..core.argtypes import at_least, number  # noqa: F401  (the commands' checks.number)
from ..core.errors import UsageError

MIN_FREE_BYTES = 16 << 20  # a run dir on a disk with less free space is refused up front


def fraction() -> Callable[[str], float]:
    """A probability strictly between 0 and 1 (a target success rate)."""
    return number(0, 1, lo_open=True, hi_open=True)


def port(text: str) -> int:
    return at_least(1, 65535)(text)


port.__name__ = "port"


def text(value: str) -> str:
    """A non-empty string."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def path(value: str) -> Path:
    """A non-empty path ('' would silently mean the current directory)."""
    return Path(text(value))


def existing_file(value: str) -> Path:
    p = path(value)
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"{value} is not a file" if p.exists() else
                                         f"{value} does not exist")
    return p


def url(value: str) -> str:
    if not text(value).startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL, e.g. "
                                         f"http://127.0.0.1:8000/v1 (got {value!r})")
    return value


def k_or_auto(hi: int) -> Callable[[str], str]:
    """'auto' or an integer in 1..hi (kept as text: the commands read 'auto' themselves)."""
    def parse(value: str) -> str:
        if value == "auto":
            return value
        try:
            k = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto' "
                                             f"(got {value!r})") from None
        if not 1 <= k <= hi:
            raise argparse.ArgumentTypeError(f"must be at least 1 (got {k})" if k < 1 else
                                             f"must be at most {hi} (got {k})")
        return value
    parse.__name__ = "k"
    return parse


# ------------------------------------------------------------------------ the file system
def _writable_dir(where: Path, what: str, flag: str, given: Path | None = None) -> None:
    """`where` will be created (if missing) and written: refuse what cannot work, with the
    file system's own reason and what to pass instead. `given`: the flag's value, when it is
    a file to be made in `where`."""
    given = given or where
    if where.exists() and not where.is_dir():
        raise UsageError(f"{flag} {where} is a file, not a directory: choose a directory")
    probe = where
    while not probe.exists():  # the nearest existing ancestor is where mkdir starts
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{flag} {where}: {probe} is a file, so {what} cannot be created "
                         "there: choose another path")
    instead = f"{flag} {Path('runs') / given.name if flag == '--run-dir' else given.name}"
    # Make (and remove) a folder where mkdir will start: permission bits do not tell (root
    # passes os.access on /proc, /sys and read-only mounts), the attempt does.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".maker-local-probe-", dir=probe))
    except OSError as e:
        raise UsageError(f"{flag} {given}: {_cannot(e, probe, what)}: choose a writable "
                         f"place, e.g. {instead}") from None
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return
    # a file system that reports no size at all (total 0: ramfs, some FUSE mounts) is not full
    if usage.total and usage.free < MIN_FREE_BYTES:
        raise UsageError(f"{flag} {given}: the disk holding {probe} is full "
                         f"({usage.free >> 20} MiB free): free some space or choose another "
                         f"place, e.g. {instead}")


def _cannot(e: OSError, probe: Path, what: str) -> str:
    """Why nothing can be created in `probe`, in the file system's words."""
    name = errno.errorcode.get(e.errno or 0, str(e.errno))
    if e.errno == errno.EROFS:
        return f"{probe} is on a read-only file system [{name}]"
    if e.errno == errno.EACCES:
        return f"{probe} is read-only to you (permission denied [{name}]; or fix its permissions)"
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk holding {probe} is full [{name}]"
    return f"{what} cannot be created in {probe} ({e.strerror or e} [{name}])"


def check_run_dir(run_dir: Path, resume: bool, ledger_name: str = "ledger.sqlite") -> None:
    """Refuse a run dir that cannot hold this run, before an engine starts or a file is made:
    a file, read-only, a full disk, or a finished or running run without --resume."""
    _writable_dir(run_dir, "the run dir", "--run-dir")
    ledger = run_dir / ledger_name
    if ledger.exists() and not resume:
        raise UsageError(f"{run_dir} already holds a run; add --resume to continue it, or "
                         "choose another --run-dir")
    if ledger.exists() and not os.access(ledger, os.W_OK):
        raise UsageError(f"{ledger} is read-only: make it writable to resume the run, or "
                         "copy the run dir somewhere writable")


def check_out_file(out: Path, flag: str = "--out") -> None:
    """Refuse an output file that cannot be written (checked before the work, not after)."""
    if out.exists() and out.is_dir():
        raise UsageError(f"{flag} {out} is a directory: give a file name")
    _writable_dir(out.parent, "the file", flag, out)


# ------------------------------------------------------------------- the model's context
# The keys vLLM derives a model's context length from (the smallest present wins), and rope
# scaling that stretches it: over-estimating here only lets the engine give the verdict.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length",
                 "max_sequence_length", "max_seq_length", "seq_len")


def model_context(folder: Path) -> int | None:
    """The positions a local model holds, from its config.json as vLLM reads it; None when
    `folder` is no model folder or says nothing (a Hugging Face id, an odd config)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    found, factor = [], 1.0
    for part in (config, config.get("text_config")):
        if not isinstance(part, dict):
            continue
        found += [v for k in _CONTEXT_KEYS if isinstance(v := part.get(k), int)
                  and not isinstance(v, bool) and v > 0]
        for rope in (part.get("rope_scaling"), part.get("rope_parameters")):
            if isinstance(rope, dict) and isinstance(rope.get("factor"), (int, float)):
                factor = max(factor, float(rope["factor"]))
    return int(min(found) * factor) if found else None


def longest_prompt(folder: Path, prompts: list[list[dict[str, str]]], api: str = "chat",
                   template_kwargs: dict[str, Any] | None = None) -> int | None:
    """Tokens of the longest of `prompts` as the engine would prefill them (its chat template
    with the generation prompt, or the plain text for the completions API), with the model's
    own tokenizer; None when the tokenizer cannot be loaded here (the engine then decides)."""
    from ..backends.shaping import chat_prompt_text
    try:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(folder))
        lengths = []
        for messages in prompts:
            if api == "chat":
                text = tok.apply_chat_template(messages, add_generation_prompt=True,
                                               tokenize=False, **(template_kwargs or {}))
                ids = tok(text, add_special_tokens=False, verbose=False)["input_ids"]
            else:
                ids = tok(chat_prompt_text(messages), verbose=False)["input_ids"]
            lengths.append(len(ids))
    except Exception:  # noqa: BLE001 - no tokenizer, no template, no transformers: no verdict
        return None
    return max(lengths, default=None)


class Renamed(argparse.Action):
    """A flag under its old name: sets what the new one sets, says the new name once. Kept
    for one release after a rename (`new`: the flag to use)."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kw: Any):
        self.new = new
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS, **kw)

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        print(f"maker-local: {option} is now {self.new} (the old name works for one more "
              "release)", file=sys.stderr)
        setattr(namespace, self.dest, True)


class HelpFormatter(argparse.HelpFormatter):
    """--help shows each option's default, unless its help already says it or it has none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if ("default" in text.lower() or not action.option_strings
                or action.default in (None, False, argparse.SUPPRESS)):
            return text
        return f"{text} (default: %(default)s)"
