"""What every backend is: the :class:`Backend` protocol, its :class:`Outcome` and the check of
``max_parallel`` (the backends import this module; :mod:`robust_rl.sweep.backends` imports them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from robust_rl.errors import InvalidArgumentError

__all__ = ["BACKENDS", "Backend", "Outcome", "check_max_parallel"]

#: the backends :func:`open_backend` accepts
BACKENDS: tuple[str, ...] = ("local", "ray")


@dataclass(frozen=True)
class Outcome:
    """What one task returned, or the exception that ended it (a crashed worker)."""

    task: int
    value: Any = None
    error: BaseException | None = None


class Backend(Protocol):
    """Runs calls in parallel; see the module docstring."""

    max_parallel: int

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        """Start ``fn(*args)`` and return its task number."""
        ...

    def pending(self) -> int:
        """Tasks submitted and not yet handed back by :meth:`wait`."""
        ...

    def wait(self) -> list[Outcome]:
        """Block until at least one task finished; return the finished ones."""
        ...

    def close(self) -> None:
        """Stop unfinished tasks and release the workers."""
        ...


def check_max_parallel(max_parallel: Any) -> int:
    """Return ``max_parallel`` if it is a positive integer, else raise naming it."""
    if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
        raise InvalidArgumentError(f"max_parallel must be a positive integer, got {max_parallel!r}")
    return max_parallel
