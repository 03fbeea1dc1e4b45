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
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from robust_rl.errors import InvalidArgumentError
from robust_rl.sweep.backends import Outcome, check_max_parallel

__all__ = ["CONNECT_TIMEOUT_S", "GCS_WAIT_S", "WORKER_ENV", "RayBackend", "check_reachable"]

#: environment variables of every task: one thread per task (each reserves one CPU)
WORKER_ENV: dict[str, str] = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: seconds to wait for a TCP connection to the cluster's address
CONNECT_TIMEOUT_S = 3.0
#: seconds Ray may wait for the cluster's GCS to accept this driver
GCS_WAIT_S = 5

_AUTH_HINT = (
    "a cluster with token authentication needs RAY_AUTH_MODE=token and its token in "
    "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
)


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise InvalidArgumentError(
            "--backend ray needs Ray: pip install 'robust-rl[ray]'"
        ) from None
    return ray


def _resolve_auto() -> str:
    """The address ``auto`` stands for (``RAY_ADDRESS``, else the cluster this node last
    started), as Ray resolves it; raises naming ``--address`` if there is none."""
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto", None)
    except Exception as exc:  # Ray's own "no cluster" errors
        found, detail = None, " ".join(str(exc).split())
    else:
        detail = "RAY_ADDRESS is unset and no cluster was started on this node"
    if not found:
        raise InvalidArgumentError(
            f"--address 'auto': no Ray cluster found ({detail}); start one with "
            "`ray start --head` or pass its HOST:PORT"
        )
    return str(found)


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``local``."""
    if address == "local":
        return None
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise InvalidArgumentError(
            f"--address {address!r}: expected HOST:PORT (the GCS port `ray start --head` "
            "printed, 6379 by default), ray://HOST:10001 or auto"
        )
    return parts.hostname, port


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`~robust_rl.errors.InvalidArgumentError` (one line) unless something
    accepts TCP connections at ``address`` within ``timeout`` seconds.

    :param address: ``HOST:PORT``, ``ray://HOST:PORT`` or ``auto`` (the address Ray would pick:
        ``RAY_ADDRESS``, else the cluster last started on this node).
    :param timeout: seconds to wait.
    """
    shown = address
    if address == "auto":
        address = _resolve_auto()
        shown = f"auto ({address})"
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InvalidArgumentError(
            f"--address {shown!r}: no Ray cluster reachable at {target[0]}:{target[1]} "
            f"({reason}); start one with `ray start --head` and pass the address it prints"
        ) from None


@contextmanager
def _stderr_captured(into: list[str]) -> Iterator[None]:
    """Collect what is written to file descriptor 2 (Ray's C++ core logs there) meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            into.append(tmp.read().decode(errors="replace"))


def _refused(address: str, exc: BaseException, log: str) -> str:
    """One line: why the cluster at ``address`` did not accept this driver."""
    reasons = [line.split(": ", 1)[1] for line in log.splitlines() if "GCS server: " in line]
    reason = reasons[-1].split("GCS server: ", 1)[-1] if reasons else " ".join(str(exc).split())
    if "Unauthenticated" in log or "InvalidAuthToken" in log:
        return (
            f"--address {address!r}: the Ray cluster refused this driver's authentication "
            f"token ({reason}); {_AUTH_HINT}"
        )
    return f"--address {address!r}: the Ray cluster refused this driver ({reason}); {_AUTH_HINT}"


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
        ray = _import_ray()
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
            key = "RAY_gcs_server_port_wait_time_s"
            previous = os.environ.get(key)
            os.environ.setdefault(key, str(GCS_WAIT_S))
            log: list[str] = []
            try:
                with _stderr_captured(log):
                    ray.init(address=self.address, logging_level=logging.WARNING)
            except (ConnectionError, TimeoutError, RuntimeError) as exc:
                raise InvalidArgumentError(_refused(self.address, exc, log[0])) from None
            finally:
                if previous is None:
                    os.environ.pop(key, None)
            if log[0]:  # connected: let Ray's messages through
                sys.stderr.write(log[0])
        self._started = True
        return ray

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        """Start ``fn(*args)`` as a Ray task and return its task number."""
        ray = self._connect()
        if fn not in self._remote:
            self._remote[fn] = ray.remote(num_cpus=1)(fn).options(
                runtime_env={"env_vars": WORKER_ENV}
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
