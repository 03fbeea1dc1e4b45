"""The ``robust-rl`` command line.

Each subcommand lives in :mod:`robust_rl.commands` as a module with ``add_parser(subparsers)``
and ``run(args) -> int``. Errors a user can cause (``ValueError``, ``FileNotFoundError``,
``FileExistsError``, ``KeyError`` from unknown ids) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "build_parser", "main"]

#: subcommand name -> module under ``robust_rl.commands``
COMMANDS: dict[str, str] = {
    "train": "train",
    "evaluate": "evaluate",
    "classify": "classify",
    "sweep": "sweep",
}

_USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, PermissionError)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    from robust_rl import __version__

    parser = argparse.ArgumentParser(
        prog="robust-rl",
        description="Adversarially robust RL and classification with entropic regularisation.",
    )
    parser.add_argument("--version", action="version", version=f"robust-rl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        mod = importlib.import_module(f"robust_rl.commands.{module}")
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``robust-rl`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except _USER_ERRORS as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"robust-rl {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robust-rl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
