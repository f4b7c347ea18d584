"""``dynashape`` entry point: user errors print one message and exit 2; bugs keep their traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from .._errors import DynashapeError


def make_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(
        prog="dynashape",
        description="Dynamic-shape engines, checked and fast: export -> check -> build -> run -> bench.",
    )
    parser.add_argument("--version", action="version", version=f"dynashape {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show progress and library logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.register(sub)
    try:
        from . import check_cmd
    except ImportError:  # the doctor is optional for the rest of the CLI
        pass
    else:
        check_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="[dynashape] %(message)s", level=logging.INFO if args.verbose or args.command == "build" else logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except DynashapeError as e:
        print(f"dynashape {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # NOTE: the reader went away (`dynashape ... | head`): not an error worth a traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
