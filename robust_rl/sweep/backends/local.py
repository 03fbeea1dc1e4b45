"""Run a sweep's tasks in worker processes on this machine.

Workers are started with ``spawn``: forking a process that has imported torch (its thread pools,
locks and OpenMP state) is unsafe. Each task pins torch to one thread (the task itself does), so
``max_parallel`` workers use about ``max_parallel`` cores. With ``max_parallel=1`` tasks run in the
calling process, one after the other (no worker start-up).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from robust_rl.sweep.backends.base import Outcome, check_max_parallel

__all__ = ["WORKER_START_METHOD", "LocalBackend"]

#: how worker processes start (see the module docstring)
WORKER_START_METHOD = "spawn"


class LocalBackend:
    """Worker processes on this machine (see the module docstring).

    :param max_parallel: worker processes (1: run tasks in this process).
    """

    def __init__(self, max_parallel: int) -> None:
        self.max_parallel = check_max_parallel(max_parallel)
        self._pool: ProcessPoolExecutor | None = None
        if max_parallel > 1:
            self._pool = ProcessPoolExecutor(
                max_workers=max_parallel,
                mp_context=multiprocessing.get_context(WORKER_START_METHOD),
            )
        self._futures: dict[Future[Any], int] = {}
        self._queued: list[tuple[int, Callable[..., Any], tuple[Any, ...]]] = []
        self._next = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        """Start ``fn(*args)`` (queue it, in this process) and return its task number."""
        task = self._next
        self._next += 1
        if self._pool is None:
            self._queued.append((task, fn, args))
        else:
            self._futures[self._pool.submit(fn, *args)] = task
        return task

    def pending(self) -> int:
        """Tasks submitted and not yet handed back."""
        return len(self._futures) + len(self._queued)

    def wait(self) -> list[Outcome]:
        """Block until a task finished and return the finished ones."""
        if self._pool is None:
            if not self._queued:
                return []
            task, fn, args = self._queued.pop(0)
            try:
                return [Outcome(task, fn(*args))]
            except Exception as exc:  # the task's own failures are values; this is a crash
                return [Outcome(task, error=exc)]
        if not self._futures:
            return []
        done, _ = wait_futures(list(self._futures), return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            task = self._futures.pop(fut)
            try:
                out.append(Outcome(task, fut.result()))
            except Exception as exc:  # the worker died
                out.append(Outcome(task, error=exc))
        return out

    def close(self) -> None:
        """Cancel queued tasks and shut the workers down."""
        self._queued.clear()
        if self._pool is not None:
            for fut in self._futures:
                fut.cancel()
            self._futures.clear()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
