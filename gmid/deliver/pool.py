"""A thread pool whose threads do not hold up the daemon's exit.

concurrent.futures joins its threads when the interpreter ends: a delivery stuck on a silent
server would keep a stopping daemon alive until its timeout. A delivery cut off by the exit is
what a crash leaves, and the outbox tries it again at the next start; so these threads are
daemon threads, and a stop does not wait for them.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class DaemonThreadPool(Executor):
    """Runs submitted calls on `workers` daemon threads."""

    def __init__(self, workers: int, name: str):
        self._queue: queue.SimpleQueue[tuple[Future, Callable, tuple] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shutdown = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Queue fn(*args) and return its future; RuntimeError after shutdown."""
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        future: Future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            future, fn, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as e:
                    future.set_exception(e)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more calls; with cancel_futures, drop the queued ones; with wait, wait for
        the running ones."""
        with self._lock:
            self._shutdown = True
        if cancel_futures:
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
