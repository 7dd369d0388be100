"""The `equiscale` command: dispatches to one module per subcommand, importing only the one used."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Callable

from study.errors import EquiscaleError

# name -> (module exposing `add_arguments(parser)` and `main(args) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("study.commands.data", "simulate (or load from the cache) a study's rigid-body dataset"),
    "run": ("study.commands.run", "run the budget-constrained studies (embedded default without CONFIG)"),
    "status": ("study.commands.status", "table of studies: trials done, best loss, best shape"),
    "dashboard": ("study.commands.dashboard", "serve optuna-dashboard on the study storage"),
    "fit": ("study.commands.fit", "fit scaling/allocation laws to the runs"),
    "export": ("study.commands.export", "write the compute-optimal allocation table"),
    "plot": ("study.commands.plot", "draw loss-vs-compute, IsoFLOP and allocation figures"),
    "report": ("study.commands.report", "Markdown + HTML report of compute and data studies, with claim verdicts"),
}


def one_line(text: str) -> str:
    """`text` as one printable line: line breaks and other control characters (from user input) escaped."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text).strip())


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def _parser(command: str | None) -> Parser:
    parser = Parser(prog="equiscale", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser = _parser(command)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse's errors (one line, see Parser) and --help: a status, not an exception
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    return run_script(lambda: module.main(args), prog=f"equiscale {args.command}")


def run_script(main_fn: Callable[[], int | None], *, prog: str | None = None) -> int:
    """Exit status of `main_fn()` (a subcommand's or a benchmark script's main): user-facing errors (a missing study
    file or storage) as one line on stderr and status 2 instead of a traceback; an interrupt as status 130."""
    prog = prog or Path(sys.argv[0]).name
    try:
        return int(main_fn() or 0)
    except EquiscaleError as exc:
        print(f"{prog}: error: {one_line(exc) or type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
