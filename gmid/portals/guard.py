"""Bounds on every answer a portal gives: a deadline for the whole of it, a cap on its body.

requests' timeouts bound each socket operation, not an answer: a portal that sends one byte a
second never trips them, and a page is read whole into memory however large it is (a gzip page
inflates on the way). `GuardedAdapter` is the transport of every PortalSession. For each request
it arms a `Watch`: when the request's deadline passes (runs.request_timeout from the start of the
request, or the run's own end, runs.run_timeout, if sooner) the watch shuts the connection's
socket down, which ends whatever read is blocked on it: connect, headers or body. And it wraps
the body (`Body`) so that reading it counts the decoded bytes and stops at the cap: the page cap
(runs.max_page) for pages, read whole by requests itself, the download cap (runs.max_download)
for streamed downloads.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter
from requests.exceptions import RequestException
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import pool_classes_by_scheme
from urllib3.util import parse_url

from gmid.control.size import human_size
from gmid.errors import DownloadRejected, PortalChanged, PortalUnavailable, RunTimeout
from gmid.portals.halt import Halt

if TYPE_CHECKING:
    from gmid.portals.web import HttpPolicy

_local = threading.local()  # the watch of the request this thread is sending


def shown_url(url: str | None) -> str:
    """The URL without user info, query and fragment, fit for messages and logs."""
    try:
        u = parse_url(url or "")
    except ValueError:
        return "(unparsable URL)"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}{u.path or ''}"


class _Deadlines:
    """One thread that ends every request past its deadline.

    A timer thread per request cost a thread start for each (about 1 ms: an eighth of a
    download's time on a fast portal). Watches are kept in a heap by deadline; a finished one
    leaves it when its deadline comes, or when the heap is purged of them.
    """

    PURGE = 4096  # entries beyond which the finished ones are swept out at once

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._cond:
            if len(self._heap) >= self.PURGE:
                self._heap = [entry for entry in self._heap if not entry[2].finished]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="gmid-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._cond.notify()  # sooner than the one the thread waits for

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._next_due()
            due.expire()  # outside the heap's lock: it takes the watch's own

    def _next_due(self) -> Watch:
        """Wait for the next watch whose deadline passed unfinished (under the lock)."""
        while True:
            while self._heap and self._heap[0][2].finished:
                heapq.heappop(self._heap)
            if not self._heap:
                self._cond.wait()
                continue
            wait = self._heap[0][0] - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._heap)[2]
            self._cond.wait(wait)


_deadlines = _Deadlines()


class Watch:
    """One request's deadline (time.monotonic()): past it, the request's socket is shut down."""

    def __init__(self, deadline: float, halt: Halt | None = None):
        self.deadline = deadline
        self.halt = halt
        self.expired = False
        self.finished = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        _deadlines.add(self)

    def attach(self, sock: socket.socket | None) -> None:
        """Watch the socket the request goes over (a new one, or a kept-alive one)."""
        with self._lock:
            self._sock = sock
            if self.expired and sock is not None:
                _shut(sock)

    def done(self) -> None:
        """The answer is read (or given up): the socket is no longer this request's."""
        self.finished = True
        with self._lock:
            self._sock = None
        if self.halt is not None:
            self.halt.discard(self)

    def expire(self) -> None:
        """End the request now, as if its deadline had passed."""
        self._expire()

    def _expire(self) -> None:
        with self._lock:
            if self.finished:
                return  # its answer came in time
            self.expired = True
            if self._sock is not None:
                _shut(self._sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also under TLS: a read blocked on it returns at once.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watched:
    """A urllib3 connection that hands its socket to the watch of the request being sent."""

    sock: Any

    def _new_conn(self):
        sock = super()._new_conn()  # type: ignore[misc]
        watch = getattr(_local, "watch", None)
        if watch is not None:
            watch.attach(sock)
        return sock

    def request(self, *args, **kwargs):
        watch = getattr(_local, "watch", None)
        if watch is not None and self.sock is not None:  # a kept-alive connection
            watch.attach(self.sock)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class WatchedHTTPConnection(_Watched, HTTPConnection):
    """An http connection under the watch of its requests."""


class WatchedHTTPSConnection(_Watched, HTTPSConnection):
    """An https connection under the watch of its requests."""


class WatchedHTTPPool(HTTPConnectionPool):
    """A pool of watched http connections."""

    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSPool(HTTPSConnectionPool):
    """A pool of watched https connections."""

    ConnectionCls = WatchedHTTPSConnection


WATCHED_POOLS = {"http": WatchedHTTPPool, "https": WatchedHTTPSPool}


class GuardedAdapter(HTTPAdapter):
    """requests' transport with a deadline for each whole answer and a cap on each body."""

    def __init__(self, policy: HttpPolicy):
        self.policy = policy
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        """Make the pool manager, with watched connections."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        """Make a proxy's manager, with watched connections (a SOCKS one keeps its own)."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if manager.pool_classes_by_scheme is pool_classes_by_scheme:
            manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        """Send under a watch; the response's body reads under the same watch, and capped."""
        limit = timeout if isinstance(timeout, int | float) else self.policy.timeout
        run_end = self.policy.deadline
        now = time.monotonic()
        if run_end is not None and now >= run_end:
            raise self.run_timeout(request.url)
        deadline = now + limit if run_end is None else min(now + limit, run_end)
        halt = self.policy.halt
        watch = Watch(deadline, halt)
        if halt is not None and not halt.add(watch):
            watch.done()
            raise self.halted(request.url)
        previous, _local.watch = getattr(_local, "watch", None), watch
        try:
            response = super().send(request, stream, timeout, verify, cert, proxies)
        except RequestException as e:
            watch.done()
            if watch.expired:
                raise self.expired(request.url, limit, deadline) from e
            raise
        except BaseException:
            watch.done()
            raise
        finally:
            _local.watch = previous
        if watch.expired:  # the headers ended at the socket's shutdown, which reads as their end
            response.close()
            raise self.expired(request.url, limit, deadline)
        response.raw = Body(response.raw, self, watch, limit, stream, response.url)
        return response

    def halted(self, url: str | None) -> PortalUnavailable:
        """The error of a request stopped because the daemon stops."""
        return PortalUnavailable(f"{shown_url(url)}: stopped, the daemon is shutting down")

    def expired(self, url: str | None, limit: float, deadline: float) -> Exception:
        """The error of a request whose deadline passed: its own, or the run's; or halted."""
        if self.policy.halt is not None and self.policy.halt.event.is_set():
            return self.halted(url)
        if self.policy.deadline is not None and deadline >= self.policy.deadline:
            return self.run_timeout(url)
        return PortalUnavailable(
            f"{shown_url(url)}: no answer within {limit:g} s (runs.request_timeout bounds the "
            "whole answer, body included)"
        )

    def run_timeout(self, url: str | None) -> RunTimeout:
        """The error of a request cut short by the end of the run."""
        run = self.policy.run_timeout
        took = f"longer than {run:g} s" if run else "too long"
        return RunTimeout(f"the run took {took} (runs.run_timeout); stopped at {shown_url(url)}")

    def over_cap(self, url: str | None, streamed: bool) -> Exception:
        """The error of a body larger than its cap."""
        where = shown_url(url)
        if streamed:
            cap = self.policy.max_download
            return DownloadRejected(
                f"{where}: more than the {cap} byte cap ({human_size(cap)}, runs.max_download)"
            )
        cap = self.policy.max_page
        return PortalChanged(
            f"{where}: the page is larger than the {cap} byte cap ({human_size(cap)}, "
            "runs.max_page); nothing more of it was read"
        )


class Body:
    """A response's raw body (urllib3's), read under the request's watch and capped.

    requests reads a page through `stream()` (Response.content), a download too
    (Response.iter_content); everything else is the wrapped body's.
    """

    def __init__(self, raw, adapter: GuardedAdapter, watch: Watch, limit: float, streamed, url):
        self._raw = raw
        self._adapter = adapter
        self._watch = watch
        self._limit = limit
        self._streamed = bool(streamed)
        self._url = url
        policy = adapter.policy
        self._cap = policy.max_download if self._streamed else policy.max_page
        declared = raw.headers.get("Content-Length", "") if raw.headers else ""
        # a download's declared size is read_body's to refuse, in its own words
        if not self._streamed and declared.isdigit() and int(declared) > self._cap:
            self.close()
            raise adapter.over_cap(url, self._streamed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        """Yield the body's (decoded) chunks, up to the cap and the deadline."""
        size = 0
        try:
            for chunk in self._raw.stream(amt, decode_content=decode_content):
                size += len(chunk)
                if size > self._cap:
                    raise self._adapter.over_cap(self._url, self._streamed)
                if time.monotonic() > self._watch.deadline:
                    self._watch.expired = True
                    raise self._adapter.expired(self._url, self._limit, self._watch.deadline)
                yield chunk
        except Exception as e:
            self.close()
            if self._watch.expired and not isinstance(e, RunTimeout | PortalUnavailable):
                raise self._adapter.expired(self._url, self._limit, self._watch.deadline) from e
            raise
        self._watch.done()
        if self._watch.expired:  # a body that ends with the connection ended at the shutdown
            raise self._adapter.expired(self._url, self._limit, self._watch.deadline)

    def close(self) -> None:
        """Close the body; the watch ends."""
        self._watch.done()
        self._raw.close()
