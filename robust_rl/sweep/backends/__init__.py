"""Where a sweep's tasks run: worker processes on this machine, or Ray tasks on a cluster.

A backend runs picklable calls ``fn(*args)`` with at most ``max_parallel`` in flight and hands
back each outcome as it finishes. It knows nothing of trials or studies (so the sweep package
imports it, never the reverse):

* :class:`~robust_rl.sweep.backends.local.LocalBackend`: ``spawn``-started worker processes
  (forking after torch is imported is unsafe), or the calling process when ``max_parallel`` is 1;
* :class:`~robust_rl.sweep.backends.ray.RayBackend`: Ray tasks on a private Ray instance or on a
  running cluster (``ray start --head``), one CPU and one torch thread each.
"""

from __future__ import annotations

from robust_rl.errors import InvalidArgumentError
from robust_rl.sweep.backends.base import BACKENDS, Backend, Outcome, check_max_parallel

__all__ = ["BACKENDS", "Backend", "Outcome", "check_max_parallel", "open_backend"]


def open_backend(name: str, max_parallel: int, address: str | None = None) -> Backend:
    """Start the backend ``name`` (close it with :meth:`Backend.close`).

    :param name: one of :data:`BACKENDS`.
    :param max_parallel: tasks in flight at once.
    :param address: Ray cluster address (``"ray"`` only); None starts a private Ray instance.
    :raises ValueError: an unknown backend, a bad ``max_parallel``, an address for the local
        backend, Ray missing, or a cluster that cannot be reached (within seconds).
    """
    if name not in BACKENDS:
        raise InvalidArgumentError(f"backend must be one of {BACKENDS}, got {name!r}")
    check_max_parallel(max_parallel)
    if name == "local":
        if address is not None:
            raise InvalidArgumentError("address applies to backend='ray' only")
        from robust_rl.sweep.backends.local import LocalBackend

        return LocalBackend(max_parallel)
    from robust_rl.sweep.backends.ray import RayBackend

    return RayBackend(max_parallel, address)
