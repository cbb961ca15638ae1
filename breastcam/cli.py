"""The ``breastcam`` command line: parses arguments and calls the library, nothing more.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args)``; library imports
happen inside ``_run_*`` so ``breastcam --help`` stays fast (no TensorFlow import).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

# --- data ------------------------------------------------------------------------------------

# --- models ----------------------------------------------------------------------------------

# --- train / evaluate ------------------------------------------------------------------------

# --- explain ---------------------------------------------------------------------------------

# --- reproduce / export / demo ---------------------------------------------------------------

# Every subcommand: (name, help, add-arguments function, run function). Order = order in --help.
COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = [
]


def build_parser() -> argparse.ArgumentParser:
    from breastcam import __version__

    parser = argparse.ArgumentParser(
        prog="breastcam",
        description="Reproduce breast-cancer imaging papers end to end: data, models, training, "
        "evaluation, explanations, reports.",
    )
    parser.add_argument("--version", action="version", version=f"breastcam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, add, run in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        code = args._run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        # Library errors already name the file/value and the way out: print them plainly.
        print(f"breastcam {args.command}: error: {err}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
