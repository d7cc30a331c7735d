"""Loopback HTTP endpoint for local apps: `POST /v1/infer` (image bytes or a JSON tensor) -> result JSON.

Binds 127.0.0.1 only. A body over MaxPayloadBytes is refused with 413 before it is read; a result with
status "error" comes back as 422 with its reason; `GET /v1/health` returns the current health snapshot.

Connections are served by a bounded pool of `max_connections` worker threads (a kept-alive connection
holds its worker until it closes or idles for `idle_timeout_s`); a connection arriving when every worker is
busy is answered 429 (`overloaded`, `Retry-After: 1`) and closed, by one small rejecting thread, so a flood
costs neither unbounded threads nor the accept loop.

Each response goes out in one write (status line, headers and body joined) on a TCP_NODELAY socket: written
as two sends (headers, then body) with Nagle's algorithm on, the body waited for the client's delayed ACK of
the headers, ~40 ms per request on a kept-alive connection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from edgeml_inference.sources.base import Source, Submit

_log = logging.getLogger(__name__)
RESULT_TIMEOUT_S = 60.0
MAX_CONNECTIONS = 32
IDLE_TIMEOUT_S = 30.0
RETRYABLE_REASONS = frozenset({"shutting_down", "overloaded"})  # answered 503 + Retry-After: try again
RETRY_AFTER = (("Retry-After", "1"),)
REJECT_BACKLOG = 64  # connections waiting for their 429; beyond, they are closed unanswered
REJECT_DRAIN_BYTES = 1 << 20  # a refused request's body up to this is read (closing on unread data is a RST)
REJECT_TIMEOUT_S = 1.0


class _PooledHTTPServer(HTTPServer):
    """HTTPServer with connections on a fixed pool of daemon threads; past it, on the rejecting one."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int,
    ) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._work: queue.SimpleQueue[tuple[socket.socket, Any] | None] = queue.SimpleQueue()
        self._rejects: queue.Queue[socket.socket | None] = queue.Queue(maxsize=REJECT_BACKLOG)
        self._active: set[socket.socket] = set()
        self._active_lock = threading.Lock()
        self.rejected = 0
        self.overloaded = threading.local()  # set on the rejecting thread: its handler answers 429
        self._threads = [
            threading.Thread(target=self._worker, name=f"source-http-{index}", daemon=True)
            for index in range(max_connections)
        ]
        self._threads.append(threading.Thread(target=self._reject_loop, name="source-http-429", daemon=True))
        for thread in self._threads:
            thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        if self._slots.acquire(blocking=False):
            self._work.put((request, client_address))
            return
        self.rejected += 1
        try:
            self._rejects.put_nowait(request)
        except queue.Full:
            self.shutdown_request(request)

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            request, client_address = item
            with self._active_lock:
                self._active.add(request)
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                with self._active_lock:
                    self._active.discard(request)
                self.shutdown_request(request)
                self._slots.release()

    def _reject_loop(self) -> None:
        self.overloaded.active = True
        while True:
            request = self._rejects.get()
            if request is None:
                return
            try:
                request.settimeout(REJECT_TIMEOUT_S)
                self.finish_request(request, request.getpeername())
            except Exception as error:  # a client that vanished or stalled: nothing to answer
                _log.debug("http: refusing a connection failed: %s", error)
            finally:
                self.shutdown_request(request)

    def server_close(self) -> None:
        """Stops listening, ends open (kept-alive) connections and the threads."""
        super().server_close()
        with self._active_lock:
            for connection in self._active:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        for _ in self._threads:
            self._work.put(None)
        with contextlib.suppress(queue.Full):
            self._rejects.put(None, timeout=1.0)


class HttpSource(Source):
    """The endpoint on 127.0.0.1:`port` (0 picks a free port; see `.port` after start)."""

    name = "http"

    def __init__(
        self,
        port: int,
        submit: Submit,
        max_body: Callable[[], int],
        health: Callable[[], dict[str, Any]] = dict,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.requested_port = port
        self.port = port
        self.submit = submit
        self.max_body = max_body
        self.health = health
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self._server: _PooledHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def rejected(self) -> int:
        """Connections answered 429 (or closed) because every worker was busy."""
        return self._server.rejected if self._server is not None else 0

    def start(self) -> None:
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # TCP_NODELAY (StreamRequestHandler.setup)
            timeout = source.idle_timeout_s  # an idle kept-alive connection gives its worker back

            def log_message(self, format: str, *args: Any) -> None:
                _log.debug("http: " + format, *args)

            def _overloaded(self) -> bool:
                if not getattr(server.overloaded, "active", False):
                    return False
                length = self.headers.get("Content-Length", "0").strip()
                if length.isdigit() and int(length) <= REJECT_DRAIN_BYTES:
                    self.rfile.read(int(length))
                detail = f"all {source.max_connections} connections are busy; retry"
                self._reply(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    {"status": "error", "reason": "overloaded", "detail": detail},
                    close=True,
                    extra=(("Retry-After", "1"),),
                )
                return True

            def do_GET(self) -> None:
                if self._overloaded():
                    return
                if self.path.rstrip("/") == "/v1/health":
                    self._reply(HTTPStatus.OK, source.health())
                else:
                    self._reply(HTTPStatus.NOT_FOUND, {"status": "error", "reason": "not_found"})

            def do_POST(self) -> None:
                if self._overloaded():
                    return
                if self.path.rstrip("/") != "/v1/infer":
                    self._reply(HTTPStatus.NOT_FOUND, {"status": "error", "reason": "not_found"}, close=True)
                    return
                length_header = self.headers.get("Content-Length")
                if length_header is None or not length_header.strip().isdigit():
                    self._reply(
                        HTTPStatus.LENGTH_REQUIRED,
                        {"status": "error", "reason": "length_required", "detail": "send Content-Length"},
                        close=True,
                    )
                    return
                length, limit = int(length_header), source.max_body()
                if length > limit:
                    detail = f"{length} bytes > MaxPayloadBytes {limit}"
                    self._reply(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        {"status": "error", "reason": "payload_too_large", "detail": detail},
                        close=True,
                    )
                    return
                body = self.rfile.read(length)
                try:
                    result = source.submit(body, "http").result(RESULT_TIMEOUT_S)
                except TimeoutError:
                    detail = f"no answer within {RESULT_TIMEOUT_S:.0f} s"
                    self._reply(
                        HTTPStatus.SERVICE_UNAVAILABLE,
                        {"status": "error", "reason": "timeout", "detail": detail},
                    )
                    return
                if not result.ok and result.reason in RETRYABLE_REASONS:  # e.g. stopping for a model update
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, result.to_json_bytes(), extra=RETRY_AFTER)
                    return
                status = HTTPStatus.OK if result.ok else HTTPStatus.UNPROCESSABLE_ENTITY
                self._send(status, result.to_json_bytes())

            def _reply(
                self,
                status: HTTPStatus,
                body: dict[str, Any],
                close: bool = False,
                extra: tuple[tuple[str, str], ...] = (),
            ) -> None:
                self._send(status, json.dumps(body).encode("utf-8"), close, extra)

            def _send(
                self,
                status: HTTPStatus,
                data: bytes,
                close: bool = False,
                extra: tuple[tuple[str, str], ...] = (),
            ) -> None:
                """Status line, headers and body in one write (see the module docstring)."""
                self.log_request(status.value)
                lines = [
                    f"{self.protocol_version} {status.value} {status.phrase}",
                    f"Server: {self.version_string()}",
                    f"Date: {self.date_time_string()}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(data)}",
                    *(f"{name}: {value}" for name, value in extra),
                ]
                if close:
                    lines.append("Connection: close")
                    self.close_connection = True
                head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
                self.wfile.write(head + data)

        server = _PooledHTTPServer(("127.0.0.1", self.requested_port), Handler, self.max_connections)
        self._server = server
        self.port = server.server_address[1]
        # shutdown() waits for the accept loop's next poll: 0.05 s, not socketserver's 0.5 s, so a SIGTERM
        # (a restart for a model update) is not held up by it
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="source-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
