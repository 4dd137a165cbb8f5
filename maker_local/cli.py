"""maker-local: a registry of thin commands over the library.

Each command is a module in `maker_local.commands` with `add_cli_args(parser)` and
`main(args) -> exit code`; modules are imported only when their command runs, so
`maker-local plan` never pays for torch or vLLM.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from maker_local.core.errors import UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UsageError(f"{message} (see {self.prog} --help)")


# name -> (help, module under maker_local.commands)
COMMANDS: dict[str, str] = {
    "solve": "run MAKER on a task end to end",
    "plan": "k_min, success odds, samples and cost from the scaling laws",
    "report": "summarise a run from its ledger (and write plots)",
    "calibrate": "measure a model's per-step accuracy and recommend k",
    "serve": "start vLLM servers for a model profile",
    "bench": "measure what one reliable step costs on this machine",
    "verify": "check a run's ledger: checksums, every decision replayed, every input re-derived",
}


def _module(name: str):
    return importlib.import_module(f"maker_local.commands.{name}")


def task_spec(argv: list[str]) -> str:
    """The --task a command line names (default hanoi): a task's own flags are added to the
    parser before the whole line is parsed."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", default="hanoi")
    known, _ = pre.parse_known_args(argv)
    return known.task


def make_parser(command: str | None = None, task: str = "hanoi") -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (all of them for --help). Commands
    that drive a task (`TASK_PURPOSE` in their module) get the task plug-in's own flags."""
    parser = _Parser(prog="maker-local", description="MAKER on self-hosted LLMs")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_ in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if command is None or command == name:
            module = _module(name)
            purpose = getattr(module, "TASK_PURPOSE", None)
            if purpose is None:
                module.add_cli_args(p)
                continue
            from .tasks import available, task_class
            try:
                cls = task_class(task)
            except ValueError as e:
                raise UsageError(str(e)) from None
            p.add_argument("--task", default="hanoi",
                           help=f"the task: {', '.join(available())}, or module.path:Class "
                           "of your own (its flags follow from it; see README)")
            try:
                cls.add_cli_args(p.add_argument_group(f"task {cls.name}"), purpose)
                module.add_cli_args(p)
            except argparse.ArgumentError as e:
                raise UsageError(f"task {cls.name}'s flags clash with {name}'s: {e}; give the "
                                 "task's flags names of their own (e.g. with the task's name "
                                 f"in front: --{cls.name}-...)") from None
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    command = next((a for a in argv if a in COMMANDS), None)
    try:
        args = make_parser(command, task_spec(argv)).parse_args(argv)
        return _module(args.command).main(args)
    except UsageError as e:
        print(f"maker-local: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maker-local: interrupted; every committed round is in the ledger: continue "
              "with --resume", file=sys.stderr)
        return 130


def entry() -> None:
    """The `maker-local` program: main(), then exit. After an in-process vLLM engine ran, the
    process leaves with os._exit once everything is flushed (the ledger is closed and the
    report written by then): vLLM's native threads otherwise race the interpreter's teardown
    and now and then abort a finished run ("terminate called without an active exception",
    exit -6)."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader of the output went away (`maker-local report RUN --json | head`): what
        # it did not read is lost, nothing else; exit as a program killed by SIGPIPE does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 128 + 13
    if "vllm" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
