"""Loopback HTTP endpoint for local apps: `POST /v1/infer` (image bytes or a JSON tensor) -> result JSON.

Binds 127.0.0.1 only. A body over MaxPayloadBytes is refused with 413 before it is read; a result with
status "error" comes back as 422 with its reason; `GET /v1/health` returns the current health snapshot.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from edgeml_inference.sources.base import Source, Submit

_log = logging.getLogger(__name__)
RESULT_TIMEOUT_S = 60.0


class HttpSource(Source):
    """A ThreadingHTTPServer on 127.0.0.1:`port` (0 picks a free port; see `.port` after start)."""

    name = "http"

    def __init__(
        self,
        port: int,
        submit: Submit,
        max_body: Callable[[], int],
        health: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.requested_port = port
        self.port = port
        self.submit = submit
        self.max_body = max_body
        self.health = health
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                _log.debug("http: " + format, *args)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/health":
                    self._reply(HTTPStatus.OK, source.health())
                else:
                    self._reply(HTTPStatus.NOT_FOUND, {"status": "error", "reason": "not_found"})

            def do_POST(self) -> None:
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
                status = HTTPStatus.OK if result.ok else HTTPStatus.UNPROCESSABLE_ENTITY
                self._reply(status, result.to_dict())

            def _reply(self, status: HTTPStatus, body: dict[str, Any], close: bool = False) -> None:
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", self.requested_port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="source-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
