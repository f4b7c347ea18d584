"""``dynashape`` entry point: user errors print one line and exit 2; bugs keep their traceback.

Exit statuses: 0 success, 1 a check or comparison found differences, 2 a user error (one line on
stderr: what was received | what was expected | what to do), 130 interrupted (Ctrl-C), 141 the
reader of stdout went away.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn


class _UsageError(Exception):
    """argparse's complaint about the command line, raised instead of printing usage and exiting."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error: the problem, and where the accepted forms are listed."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} | the flags of `{self.prog} --help` | run `{self.prog} --help` to see them")


def make_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from . import commands

    parser = ArgumentParser(
        prog="dynashape",
        description="Dynamic-shape engines, checked and fast: export -> check -> build -> run -> bench.",
    )
    parser.add_argument("--version", action="version", version=f"dynashape {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr (export, build, validation, bench)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=ArgumentParser)
    commands.register(sub)
    try:
        from . import check_cmd
    except ImportError:  # the doctor is optional for the rest of the CLI
        pass
    else:
        check_cmd.add_parser(sub)
    from . import plan_cmd, serve_cmd

    plan_cmd.add_parser(sub)
    serve_cmd.add_parsers(sub)
    return parser


def _os_error_text(e: OSError) -> str:
    """An OSError about a user's path as received | expected | fix."""
    path = e.filename if e.filename is not None else "?"
    why = e.strerror or type(e).__name__
    if isinstance(e, IsADirectoryError) or (os.path.isdir(str(path)) and not isinstance(e, NotADirectoryError)):
        expected, fix = "a file path, not a folder", f"name a file inside it, e.g. {os.path.join(str(path), 'out')}"
    elif isinstance(e, FileNotFoundError):
        expected, fix = "an existing file, or a file in an existing folder", f"check the path; create the folder with mkdir -p {os.path.dirname(str(path)) or '.'}"
    elif isinstance(e, PermissionError):
        expected, fix = "a path this user may read or write", "choose another path or fix the permissions"
    else:
        expected, fix = "a readable or writable path", "check the path and the disk"
    return f"'{path}': {why} | {expected} | {fix}"


def _fail(command: str | None, text: str) -> int:
    # NOTE: one line whatever the text holds, so scripts and log scrapers see one record per error.
    where = "dynashape" if command is None else f"dynashape {command}"
    print(f"{where}: error: {' '.join(str(text).split())}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    from .._errors import DynashapeError

    command: str | None = None
    try:
        parser = make_parser()
        args = parser.parse_args(argv)
        command = args.command
        from .. import _progress

        _progress.set_default_quiet(args.quiet)
        logging.basicConfig(format="[dynashape] %(message)s",
                            level=logging.INFO if args.verbose or (args.command == "build" and not args.quiet) else logging.WARNING)
        return int(args.func(args) or 0)
    except _UsageError as e:
        return _fail(command, str(e))
    except DynashapeError as e:
        return _fail(command, str(e))
    except KeyboardInterrupt:
        # NOTE: Ctrl-C is the user's choice, not a failure to explain; 130 is the shell's 128 + SIGINT.
        print(f"dynashape {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # NOTE: the reader went away (`dynashape ... | head`): not an error worth a traceback. Point
        # stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:
        # NOTE: an OSError that names a file is about a path the user gave (a missing folder, a
        # folder where a file goes, no permission); one without a file name is a bug and keeps its traceback.
        if e.filename is None:
            raise
        return _fail(command, _os_error_text(e))


if __name__ == "__main__":
    sys.exit(main())
