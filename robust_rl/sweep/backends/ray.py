"""Run a sweep's tasks as Ray tasks: ``robust-rl sweep FILE --out DIR --backend ray``.

Ray is optional (``pip install 'robust-rl[ray]'``) and imported only here. Each task reserves one
CPU and runs with one torch thread (``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``), so Ray's
scheduler packs trials onto the cluster's CPUs; at most ``max_parallel`` tasks are in flight.

Where Ray runs:

* ``address=None``: a private Ray instance with ``max_parallel`` CPUs, started here and shut down
  by :meth:`RayBackend.close` (any ``RAY_ADDRESS`` in the environment is ignored);
* ``address="HOST:PORT"`` (the GCS port ``ray start --head`` printed, 6379 by default),
  ``"ray://HOST:10001"`` (Ray Client) or ``"auto"`` (``RAY_ADDRESS``, else the cluster last
  started on this node): a running cluster, left running afterwards;
* if this process already called ``ray.init``, that Ray is used as it is and left running.

Connecting fails within seconds, with one line: nothing listening at ``HOST:PORT`` is found with a
plain socket (:data:`CONNECT_TIMEOUT_S`) before Ray is touched, and Ray's own wait for the GCS is
bounded (``RAY_gcs_server_port_wait_time_s``, :data:`GCS_WAIT_S`, unless set already), so a cluster
that refuses the connection (token authentication without the right token) also fails fast.

Token authentication (Ray >= 2.5x): a cluster started with ``RAY_AUTH_MODE=token`` (or with a token
in ``~/.ray/auth_token``) accepts drivers that set ``RAY_AUTH_MODE=token`` and hold the same token
in ``RAY_AUTH_TOKEN``, in the file ``RAY_AUTH_TOKEN_PATH`` names, or in ``~/.ray/auth_token``;
Ray reads these variables itself, and this module passes nothing on.

On a cluster, every node needs the same robust_rl installed, and the output folder must be on a
filesystem that the driver and every worker see at the same absolute path: workers write
``out/<trial>/`` there and the driver reads the results back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from robust_rl._ray import (
    CONNECT_TIMEOUT_S,
    GCS_WAIT_S,
    WORKER_ENV,
    check_reachable,
    import_ray,
    join_cluster,
    task_env,
)
from robust_rl.sweep.backends.base import Outcome, check_max_parallel

__all__ = ["CONNECT_TIMEOUT_S", "GCS_WAIT_S", "WORKER_ENV", "RayBackend", "check_reachable"]


class RayBackend:
    """Ray tasks (see the module docstring).

    :param max_parallel: tasks in flight at once (and the CPUs of a private Ray instance).
    :param address: a running cluster's address, or None for a private Ray instance.
    :raises ValueError: Ray is not installed, or the cluster cannot be reached.
    """

    def __init__(self, max_parallel: int, address: str | None = None) -> None:
        self.max_parallel = check_max_parallel(max_parallel)
        self.address = address
        self._ray: ModuleType | None = None
        self._started = False
        self._pending: dict[Any, int] = {}
        self._next = 0
        self._remote: dict[Callable[..., Any], Any] = {}
        ray = import_ray()
        if address is not None:
            check_reachable(address)
        self._ray = ray

    def _connect(self) -> ModuleType:
        """Start or join Ray on the first task (a sweep with nothing to run starts nothing)."""
        ray = self._ray
        assert ray is not None
        if ray.is_initialized() or self._started:
            return ray
        if self.address is None:
            ray.init(
                address="local",
                num_cpus=self.max_parallel,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        else:
            join_cluster(ray, self.address)
        self._started = True
        return ray

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        """Start ``fn(*args)`` as a Ray task and return its task number."""
        ray = self._connect()
        if fn not in self._remote:
            self._remote[fn] = ray.remote(num_cpus=1)(fn).options(
                runtime_env={"env_vars": task_env()}
            )
        task = self._next
        self._next += 1
        self._pending[self._remote[fn].remote(*args)] = task
        return task

    def pending(self) -> int:
        """Tasks submitted and not yet handed back."""
        return len(self._pending)

    def wait(self) -> list[Outcome]:
        """Block until a task finished and return the finished ones."""
        if not self._pending:
            return []
        ray = self._connect()
        ready, _ = ray.wait(list(self._pending), num_returns=1)
        out = []
        for ref in ready:
            task = self._pending.pop(ref)
            try:
                out.append(Outcome(task, ray.get(ref)))
            except Exception as exc:  # the worker died (node lost, out of memory)
                out.append(Outcome(task, error=exc))
        return out

    def close(self) -> None:
        """Cancel unfinished tasks; shut Ray down if this backend started it."""
        ray = self._ray
        if ray is None:
            return
        for ref in self._pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished, or Ray gone: nothing left to stop
                pass
        self._pending.clear()
        if self._started:
            ray.shutdown()
            self._started = False
