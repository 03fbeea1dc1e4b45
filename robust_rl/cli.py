"""The ``robust-rl`` command line.

Each subcommand lives in :mod:`robust_rl.commands` as a module with ``add_parser(subparsers)``
and ``run(args) -> int``. Errors a user can cause (:class:`robust_rl.errors.UserError`: invalid
arguments, unknown names, missing inputs, existing outputs) become one line on stderr and exit
code 2; any other exception is a bug and keeps its traceback (exit code 1).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from robust_rl.errors import UserError

__all__ = ["COMMANDS", "build_parser", "main"]

#: subcommand name -> module under ``robust_rl.commands``
COMMANDS: dict[str, str] = {
    "train": "train",
    "evaluate": "evaluate",
    "classify": "classify",
    "sweep": "sweep",
}


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
    except UserError as exc:
        print(f"robust-rl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        path = getattr(exc, "path", None)
        if path is not None:  # a checkpoint was written (robust_rl.checkpoints)
            print(
                f"robust-rl {args.command}: interrupted at step {exc.num_timesteps}; checkpoint "  # type: ignore[attr-defined]
                f"{path} written: run the same command with --resume to continue",
                file=sys.stderr,
            )
        else:
            print(f"robust-rl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
