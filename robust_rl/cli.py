"""The ``robust-rl`` command line.

Each subcommand lives in :mod:`robust_rl.commands` as a module with ``add_parser(subparsers)``
and ``run(args) -> int``. Errors a user can cause (:class:`robust_rl.errors.UserError`: invalid
arguments, unknown names, missing inputs, existing outputs) become one line on stderr and exit
code 2; a file system that refuses a write (full, read-only, over quota) becomes one line and
exit code 1; any other exception is a bug and keeps its traceback (exit code 1).
"""

from __future__ import annotations

import argparse
import errno
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
    "report": "report",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    from robust_rl import __version__

    parser = argparse.ArgumentParser(
        prog="robust-rl",
        description="Adversarially robust RL and classification with entropic regularisation.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"robust-rl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        mod = importlib.import_module(f"robust_rl.commands.{module}")
        mod.add_parser(sub)
    return parser


#: the file system refused a write: full, read-only, over quota
_STORAGE_ERRORS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``robust-rl`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):  # answered before the commands' heavy imports
        from robust_rl import __version__

        print(f"robust-rl {__version__}")
        return 0
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
    except OSError as exc:
        if exc.errno not in _STORAGE_ERRORS:
            raise
        what = f" {exc.filename}" if exc.filename else ""
        print(
            f"robust-rl {args.command}: error: cannot write{what}: {exc.strerror}; files written "
            "before are complete (writes are atomic), so rerun once there is space (train: "
            "--resume continues from the last checkpoint)",
            file=sys.stderr,
        )
        return 1
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
