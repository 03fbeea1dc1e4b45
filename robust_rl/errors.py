"""Exceptions for errors a user can cause and fix (bad arguments, missing or existing files).

Each subclasses the built-in exception a Python user would expect (``ValueError``,
``FileNotFoundError``, ``FileExistsError``, ``KeyError``), so ``except ValueError`` keeps working,
and all share :class:`UserError`, which the ``robust-rl`` command line turns into one line on
stderr and exit code 2. Any other exception is a bug: the CLI lets it through with its traceback
(exit code 1). This module imports nothing, so the torch-only core can use it.
"""

from __future__ import annotations

__all__ = [
    "InvalidArgumentError",
    "MissingFileError",
    "OutputExistsError",
    "UnknownNameError",
    "UserError",
]


class UserError(Exception):
    """Base class of every error caused by the user's input rather than by a bug."""


class InvalidArgumentError(UserError, ValueError):
    """An argument, config key or file content is invalid; the message names it and what is accepted."""


class UnknownNameError(UserError, KeyError):
    """An unknown name (env id, suite, model, MDP); the message lists the known ones."""

    def __str__(self) -> str:  # KeyError quotes its message; a user error should read plainly
        return str(self.args[0]) if self.args else ""


class MissingFileError(UserError, FileNotFoundError):
    """An input file (model, config, checkpoint, data) does not exist."""


class OutputExistsError(UserError, FileExistsError):
    """An output already exists and overwriting it was not asked for (``force``/``--force``)."""
