"""Joining a Ray cluster quickly or failing with one line (shared by the sweep's Ray backend and
the parallel robustness evaluation).

Connecting fails within seconds: nothing listening at ``HOST:PORT`` is found with a plain socket
(:data:`CONNECT_TIMEOUT_S`) before Ray is touched, and Ray's own wait for the GCS is bounded
(``RAY_gcs_server_port_wait_time_s``, :data:`GCS_WAIT_S`, unless set already), so a cluster that
refuses the connection (token authentication without the right token) also fails fast, and a
listener that is not Ray is reported as such.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from urllib.parse import urlsplit

from robust_rl.errors import InvalidArgumentError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "GCS_WAIT_S",
    "WORKER_ENV",
    "check_reachable",
    "import_ray",
    "join_cluster",
    "task_env",
]

#: environment variables of every task: one thread per task (each reserves one CPU)
WORKER_ENV: dict[str, str] = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def task_env() -> dict[str, str]:
    """The environment variables of a Ray task: :data:`WORKER_ENV`, plus the checkpoint signing
    key file when ``ROBUST_RL_KEY_FILE`` names one (shared storage), so that a trial resumed on
    another node can verify the checkpoint its first node wrote."""
    from robust_rl.checkpoints import KEY_FILE_ENV

    env = dict(WORKER_ENV)
    if os.environ.get(KEY_FILE_ENV):
        env[KEY_FILE_ENV] = os.environ[KEY_FILE_ENV]
    return env


#: seconds to wait for a TCP connection to the cluster's address
CONNECT_TIMEOUT_S = 3.0
#: seconds Ray may wait for the cluster's GCS to accept this driver
GCS_WAIT_S = 5

_AUTH_HINT = (
    "a cluster with token authentication needs RAY_AUTH_MODE=token and its token in "
    "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
)


def import_ray() -> ModuleType:
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
        with socket.create_connection(target, timeout=timeout) as sock:
            grpc = os.environ.get("RAY_USE_TLS", "0") in ("0", "") and _speaks_grpc(sock)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InvalidArgumentError(
            f"--address {shown!r}: no Ray cluster reachable at {target[0]}:{target[1]} "
            f"({reason}); start one with `ray start --head` and pass the address it prints"
        ) from None
    if grpc is False:
        raise InvalidArgumentError(
            f"--address {shown!r}: something listens at {target[0]}:{target[1]} but it is not a "
            "Ray cluster (it does not speak gRPC); pass the GCS address `ray start --head` "
            "printed (port 6379 by default) or ray://HOST:10001"
        )


#: HTTP/2 client preface and an empty SETTINGS frame: what a gRPC client sends first
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _speaks_grpc(sock: socket.socket) -> bool:
    """Whether the server answers an HTTP/2 preface with a SETTINGS frame, as every gRPC
    server (Ray's GCS, Ray Client) does first; a closed connection or other bytes: not gRPC."""
    try:
        sock.sendall(_H2_PREFACE)
        header = b""
        while len(header) < 5:
            chunk = sock.recv(5 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:
        return False
    return header[3] == 0x04  # frame type SETTINGS


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


def join_cluster(ray: ModuleType, address: str, **kwargs: object) -> None:
    """``ray.init(address=address)`` within seconds, or one line saying why not.

    :param ray: the imported ``ray`` module.
    :param address: a running cluster's address (checked reachable first).
    :param kwargs: further ``ray.init`` arguments.
    """
    check_reachable(address)
    key = "RAY_gcs_server_port_wait_time_s"
    previous = os.environ.get(key)
    os.environ.setdefault(key, str(GCS_WAIT_S))
    log: list[str] = []
    try:
        with _stderr_captured(log):
            ray.init(address=address, logging_level=logging.WARNING, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise InvalidArgumentError(_refused(address, exc, log[0])) from None
    finally:
        if previous is None:
            os.environ.pop(key, None)
    if log[0]:  # connected: let Ray's messages through
        sys.stderr.write(log[0])
