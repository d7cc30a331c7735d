"""The loopback endpoint's connections on one epoll thread: accept, read, answer in order, time out, 429.

Why not a thread per connection: with 8 clients on kept-alive connections (digits), 8 handler threads
woke from `recv` and fought the batcher for the GIL: 10-12 context switches per request against ~1.4 for
threads calling `submit` in-process, and ~240 us of the app's CPU per request against ~90; that, more than
the parsing, was the HTTP path's cost. Here one thread waits on every socket (epoll, Linux: every platform
in the recipe), reads and parses a request, submits it and goes back to waiting; whoever resolves the
result (the batcher thread, or this thread when the request ran inline) writes the answer straight to the
non-blocking socket. Nothing waits on a future: ~0.3 context switches and ~120 us CPU per request.

A connection is armed in epoll with EPOLLONESHOT, so exactly one thread holds it at a time: the loop from
its event until it submits, the future's callback from the result until it re-arms it. A response the
socket cannot take at once (a client not reading) is finished by the loop on EPOLLOUT; a pipelined next
request waits in the connection's buffer until the one before it is answered (answers stay in order).

At most `max_connections` connections are served; one arriving past them is answered 429 (after its head
and a body of up to REJECT_DRAIN_BYTES are read, so closing does not reset the connection under the
answer) and closed; past REJECT_BACKLOG of those it is closed unanswered. A served connection idle for
`idle_timeout_s` between requests (or stalled inside one) is closed, which frees its place. `close()`
closes idle connections at once and gives requests in flight up to DRAIN_S to be answered.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol

from edgeml_inference.sources.http_wire import (
    CONTINUE,
    MAX_HEAD_BYTES,
    BadRequest,
    RequestHead,
    drop_empty_lines,
    head_end,
    parse_head,
)

if TYPE_CHECKING:  # only for types: the HTTP modules load without numpy
    from edgeml_inference.results import InferenceResult

_log = logging.getLogger(__name__)
Reply = tuple[bytes, bool]  # the response bytes, whether the connection stays open after them
RECV_BYTES = 65536
MAX_RECV_BYTES = 4 << 20  # one read of a large body
REJECT_BACKLOG = 64  # connections waiting for their 429; beyond, they are closed unanswered
REJECT_DRAIN_BYTES = 1 << 20  # a refused request's body up to this is read (closing on unread data is a RST)
REJECT_TIMEOUT_S = 1.0
SWEEP_S = 0.25  # how often timeouts are looked at (at most)
DRAIN_S = 1.0  # at stop, how long requests in flight may take to be answered
_READ = select.EPOLLIN | select.EPOLLONESHOT
_WRITE = select.EPOLLOUT | select.EPOLLONESHOT


class Pending(Protocol):
    """A request's future result, as `submit` returns it (`concurrent.futures.Future` or alike)."""

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> InferenceResult: ...

    def add_done_callback(self, fn: Callable[[Pending], None]) -> None: ...


class Endpoint(Protocol):
    """What the server asks of the endpoint about each request."""

    def plan(self, head: RequestHead) -> Reply | int:
        """An answer now (no body read), or the number of body bytes to read before `submit`."""

    def submit(self, head: RequestHead, body: bytes, alone: bool) -> Pending:
        """Starts the request; the future resolves with its result. `alone`: nothing else is ready or in
        flight, so the request may run on the calling thread (else it is queued for the batcher, and the
        loop goes on reading while the model runs)."""

    def answer(self, head: RequestHead, result: InferenceResult) -> Reply:
        """The response to a resolved request."""

    def refuse(self, status: HTTPStatus, detail: str, retry: bool = False) -> Reply:
        """A refusal answered by the server itself (malformed, overloaded, timed out); closes."""


class _Connection:
    __slots__ = (
        "buffer",
        "closed",
        "fd",
        "head",
        "in_flight",
        "keep",
        "outbox",
        "refusing",
        "since",
        "sock",
        "wanted",
    )

    def __init__(self, sock: socket.socket, refusing: bool) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.buffer = bytearray()
        self.head: RequestHead | None = None  # a request whose body is still being read
        self.wanted = 0  # that body's length
        self.outbox = b""  # what the socket has not taken yet of the last answer
        self.keep = True  # after the outbox: keep the connection
        self.refusing = refusing  # past max_connections: its request is answered 429
        self.since = time.monotonic()  # last read, write or arming
        self.in_flight = False  # a request's future holds it (the sweep leaves it alone)
        self.closed = False


class EpollServer:
    """Serves `endpoint` on a listening socket bound to `address` until `close()`."""

    def __init__(
        self,
        address: tuple[str, int],
        endpoint: Endpoint,
        max_connections: int,
        idle_timeout_s: float,
        result_timeout_s: float,
    ) -> None:
        self.endpoint = endpoint
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.result_timeout_s = result_timeout_s
        self.rejected = 0
        self._listener = socket.create_server(address, backlog=64)
        self._listener.setblocking(False)
        self.server_address: tuple[str, int] = self._listener.getsockname()[:2]
        self._waker, self._wake_end = socket.socketpair()
        self._waker.setblocking(False)
        self._poll = select.epoll()
        self._poll.register(self._listener.fileno(), select.EPOLLIN)
        self._poll.register(self._wake_end.fileno(), select.EPOLLIN)
        self._served: dict[int, _Connection] = {}
        self._refusing: dict[int, _Connection] = {}
        self._waiting: dict[Pending, tuple[_Connection, RequestHead, float]] = {}
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="source-http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stops listening and ends every connection, kept-alive ones included, then the thread."""
        self._stopping = True
        with contextlib.suppress(OSError):
            self._waker.send(b"x")
        self._thread.join(timeout_s)

    # the loop thread

    def _loop(self) -> None:
        sweep_s = min(SWEEP_S, self.idle_timeout_s / 4, REJECT_TIMEOUT_S / 4)
        next_sweep = time.monotonic() + sweep_s
        listen_fd, wake_fd = self._listener.fileno(), self._wake_end.fileno()
        try:
            while not self._stopping:
                ready = self._poll.poll(sweep_s)
                alone = len(ready) == 1 and not self._waiting
                for fd, events in ready:
                    if fd == listen_fd:
                        self._accept()
                    elif fd == wake_fd:
                        continue
                    else:
                        connection = self._served.get(fd) or self._refusing.get(fd)
                        if connection is None:
                            continue
                        if events & select.EPOLLOUT:
                            self._flush(connection)
                        else:
                            self._readable(connection, alone)
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + sweep_s
        except Exception:
            _log.exception("http: the connection loop failed")
        finally:
            self._shut_down()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # e.g. out of file descriptors: the next event tries again
                _log.warning("http: accept failed: %s", error)
                return
            refusing = len(self._served) >= self.max_connections
            if refusing:
                self.rejected += 1
                if len(self._refusing) >= REJECT_BACKLOG:
                    sock.close()
                    continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(sock, refusing)
            (self._refusing if refusing else self._served)[connection.fd] = connection
            self._poll.register(connection.fd, _READ)

    def _sweep(self, now: float) -> None:
        for future, (connection, _head, started) in list(self._waiting.items()):
            if now - started > self.result_timeout_s and self._waiting.pop(future, None) is not None:
                detail = f"no answer within {self.result_timeout_s:.0f} s"
                self._send(connection, self.endpoint.refuse(HTTPStatus.SERVICE_UNAVAILABLE, detail))
        for connections, limit in ((self._served, self.idle_timeout_s), (self._refusing, REJECT_TIMEOUT_S)):
            for connection in list(connections.values()):
                if not connection.in_flight and now - connection.since > limit:
                    _log.debug("http: closing a connection idle for %.1f s", now - connection.since)
                    self._close(connection)

    def _shut_down(self) -> None:
        """No new connections; idle ones closed at once; a request in flight gets its answer (its
        callback closes the connection after it) for up to DRAIN_S, then everything is closed."""
        with contextlib.suppress(OSError):
            self._listener.close()
        for connection in [*self._served.values(), *self._refusing.values()]:
            if not connection.in_flight:
                self._close(connection)
        deadline = time.monotonic() + DRAIN_S
        while self._waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        self._waiting.clear()
        for connection in [*self._served.values(), *self._refusing.values()]:
            self._close(connection)
        self._poll.close()
        self._waker.close()
        self._wake_end.close()

    # whichever thread holds the connection

    def _readable(self, connection: _Connection, alone: bool) -> None:
        size = max(RECV_BYTES, min(connection.wanted - len(connection.buffer), MAX_RECV_BYTES))
        try:
            data = connection.sock.recv(size)
        except (BlockingIOError, InterruptedError):
            self._arm(connection, _READ)
            return
        except OSError as error:
            _log.debug("http: connection ended: %s", error)
            self._close(connection)
            return
        if not data:  # the client closed (inside a request: nothing it could still read an answer to)
            self._close(connection)
            return
        connection.buffer += data
        connection.since = time.monotonic()
        self._go_on(connection, alone)

    def _go_on(self, connection: _Connection, alone: bool = False) -> None:
        try:
            self._advance(connection, alone)
        except Exception:  # a bug in answering one request: that connection goes, the server stays
            _log.exception("http: answering a request failed")
            self._close(connection)

    def _advance(self, connection: _Connection, alone: bool) -> None:
        """Answers what the buffer holds, in order, until a request is in flight or more must be read."""
        endpoint, buffer = self.endpoint, connection.buffer
        while True:
            head = connection.head
            if head is None:
                drop_empty_lines(buffer)
                end = head_end(buffer)
                if end is None:
                    if len(buffer) > MAX_HEAD_BYTES:
                        detail = f"request head over {MAX_HEAD_BYTES} bytes"
                        self._send(
                            connection, endpoint.refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, detail)
                        )
                        return
                    self._arm(connection, _READ)
                    return
                length, taken = end
                try:
                    head = parse_head(bytes(buffer[:length]))
                except BadRequest as error:
                    _log.debug("http: refused a request: %s", error.detail)
                    self._send(connection, endpoint.refuse(error.status, error.detail))
                    return
                del buffer[:taken]
                plan = self._refusing_plan(head, len(buffer)) if connection.refusing else endpoint.plan(head)
                if not isinstance(plan, int):
                    if not self._send(connection, plan):
                        return
                    continue
                wanted = plan
                connection.head, connection.wanted = head, wanted
                if head.expect_continue and len(buffer) < wanted and not connection.refusing:
                    try:  # 25 bytes on a connection with nothing unsent: the socket takes them
                        connection.sock.send(CONTINUE)
                    except OSError:
                        self._close(connection)
                        return
            if len(buffer) < connection.wanted:
                self._arm(connection, _READ)
                return
            body = bytes(buffer[: connection.wanted])
            del buffer[: connection.wanted]
            connection.head, connection.wanted = None, 0
            if connection.refusing:
                self._send(connection, self._overloaded())
                return
            connection.in_flight = True  # before submit: its callback may run (and re-arm) at once
            future = endpoint.submit(head, body, alone)
            if not future.done():
                self._waiting[future] = (connection, head, time.monotonic())
                future.add_done_callback(self._resolved)
                return
            connection.in_flight = False  # answered inline (continuous mode, nothing queued)
            if not self._send(connection, self._answer(head, future)):
                return

    def _resolved(self, future: Pending) -> None:
        """The future's callback (on the thread that resolved it): answer, then go on with the connection."""
        waiting = self._waiting.pop(future, None)
        if waiting is None:  # timed out and answered 503 already, or the server stopped
            return
        connection, head, _ = waiting
        if self._send(connection, self._answer(head, future)):
            self._go_on(connection)

    def _answer(self, head: RequestHead, future: Pending) -> Reply:
        try:
            return self.endpoint.answer(head, future.result())
        except Exception as error:
            _log.exception("http: a request failed")
            return self.endpoint.refuse(HTTPStatus.INTERNAL_SERVER_ERROR, str(error)[:200])

    def _refusing_plan(self, head: RequestHead, buffered: int) -> Reply | int:
        """A connection past max_connections: its body is drained before the 429, unless large or unsent."""
        length = head.content_length or 0
        if head.chunked or length > REJECT_DRAIN_BYTES or (head.expect_continue and buffered < length):
            return self._overloaded()
        return length

    def _overloaded(self) -> Reply:
        detail = f"all {self.max_connections} connections are busy; retry"
        return self.endpoint.refuse(HTTPStatus.TOO_MANY_REQUESTS, detail, retry=True)

    def _send(self, connection: _Connection, reply: Reply) -> bool:
        """Writes `reply`; True when the connection goes on at once (sent whole, kept open)."""
        data, keep = reply
        try:
            sent = connection.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            _log.debug("http: connection ended: %s", error)
            self._close(connection)
            return False
        if sent < len(data):
            connection.outbox, connection.keep = data[sent:], keep
            self._arm(connection, _WRITE)
            return False
        if not keep:
            self._close(connection)
            return False
        connection.since = time.monotonic()
        return True

    def _flush(self, connection: _Connection) -> None:
        data, connection.outbox = connection.outbox, b""
        if self._send(connection, (data, connection.keep)):
            self._go_on(connection)

    def _arm(self, connection: _Connection, events: int) -> None:
        if self._stopping or connection.closed:
            self._close(connection)
            return
        connection.since = time.monotonic()
        connection.in_flight = False
        try:
            self._poll.modify(connection.fd, events)
        except (OSError, ValueError):  # closed under us (stop)
            self._close(connection)

    def _close(self, connection: _Connection) -> None:
        if connection.closed:
            return
        connection.closed = True
        (self._refusing if connection.refusing else self._served).pop(connection.fd, None)
        with contextlib.suppress(OSError, ValueError):
            self._poll.unregister(connection.fd)
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_WR)  # as socketserver does: FIN after the answer
        connection.sock.close()
