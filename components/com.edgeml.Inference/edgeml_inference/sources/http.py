"""Loopback HTTP endpoint for local apps: `POST /v1/infer` (image bytes or a JSON tensor) -> result JSON.

Binds 127.0.0.1 only. A body over MaxPayloadBytes is refused with 413 before it is read; a result with
status "error" comes back as 422 with its reason (503 + Retry-After for `shutting_down` and `overloaded`:
try again); `GET /v1/health` returns the current health snapshot. Requests are read by the strict HTTP/1.1
reader of `http_wire` (malformed input: one 4xx line naming what was wrong, then close); connections are
served by `http_server` (one epoll thread, at most `max_connections`, 429 `overloaded` + `Retry-After: 1`
past them, kept-alive ones closed after `idle_timeout_s`).

Each response goes out in one write (status line, headers and body joined) on a TCP_NODELAY socket: written
as two sends (headers, then body) with Nagle's algorithm on, the body waited for the client's delayed ACK of
the headers, ~40 ms per request on a kept-alive connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from edgeml_inference.sources.base import Source, Submit, SubmitGroup
from edgeml_inference.sources.http_server import EpollServer, Pending, Reply
from edgeml_inference.sources.http_wire import RequestHead, response

if TYPE_CHECKING:  # only for types: the HTTP modules load without numpy
    from edgeml_inference.results import InferenceResult

RESULT_TIMEOUT_S = 60.0
MAX_CONNECTIONS = 32
IDLE_TIMEOUT_S = 30.0
INLINE_MAX_S = 0.002  # a request running longer on the loop thread holds up the other connections
RETRYABLE_REASONS = frozenset({"shutting_down", "overloaded"})  # answered 503 + Retry-After: try again
RETRY_AFTER = (("Retry-After", "1"),)
REASONS = {  # the `reason` of each refusal the endpoint itself answers
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.LENGTH_REQUIRED: "length_required",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.EXPECTATION_FAILED: "expectation_failed",
    HTTPStatus.TOO_MANY_REQUESTS: "overloaded",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "headers_too_large",
    HTTPStatus.INTERNAL_SERVER_ERROR: "internal_error",
    HTTPStatus.SERVICE_UNAVAILABLE: "timeout",
    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: "http_version_not_supported",
}


def refusal(status: HTTPStatus, detail: str, extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    """An error answer of the endpoint's own; the connection closes after it."""
    body = json.dumps({"status": "error", "reason": REASONS[status], "detail": detail}).encode("utf-8")
    return response(status, body, close=True, extra=extra), False


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
        submit_group: SubmitGroup | None = None,
    ) -> None:
        self.requested_port = port
        self.port = port
        self.submit_payload = submit
        self.submit_group = submit_group  # queues without running on the caller's thread
        self._inline_s = 0.0  # how long the last request run on the loop thread took
        self.max_body = max_body
        self.health = health
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self._server: EpollServer | None = None

    @property
    def rejected(self) -> int:
        """Connections answered 429 (or closed) because `max_connections` were open."""
        return self._server.rejected if self._server is not None else 0

    def start(self) -> None:
        server = EpollServer(
            ("127.0.0.1", self.requested_port),
            self,
            self.max_connections,
            self.idle_timeout_s,
            RESULT_TIMEOUT_S,
        )
        self._server = server
        self.port = server.server_address[1]
        server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    # http_server.Endpoint

    def plan(self, head: RequestHead) -> Reply | int:
        if head.path == "/v1/infer":
            if head.method != "POST":
                return refusal(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{head.method} /v1/infer: use POST", (("Allow", "POST"),)
                )
            length = head.content_length
            if head.chunked or length is None:
                return refusal(
                    HTTPStatus.LENGTH_REQUIRED, "send Content-Length (chunked bodies are not accepted)"
                )
            limit = self.max_body()
            if length > limit:
                return refusal(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"{length} bytes > MaxPayloadBytes {limit}"
                )
            return length
        if head.path == "/v1/health":
            if head.method != "GET":
                return refusal(
                    HTTPStatus.METHOD_NOT_ALLOWED, f"{head.method} /v1/health: use GET", (("Allow", "GET"),)
                )
            if head.has_body:
                return refusal(HTTPStatus.BAD_REQUEST, "GET /v1/health takes no body")
            return self._reply(head, HTTPStatus.OK, json.dumps(self.health()).encode("utf-8"))
        return refusal(HTTPStatus.NOT_FOUND, f"no {head.path[:80]}; POST /v1/infer or GET /v1/health")

    def submit(self, head: RequestHead, body: bytes, alone: bool) -> Pending:
        """Through `submit` (which may run the request on this thread when the batcher is idle) unless
        others wait and the last request run here took over INLINE_MAX_S: then queued, so that the loop
        reads and decodes the next requests while the batcher runs the model. A small model runs here (a
        thread switch costs more than its run)."""
        if self.submit_group is not None and not alone and self._inline_s > INLINE_MAX_S:
            return self.submit_group([(body, "http")])[0]
        start = time.perf_counter()
        answer = self.submit_payload(body, "http")
        if answer.done():  # it ran here (or was refused at once)
            self._inline_s = time.perf_counter() - start
        return answer

    def answer(self, head: RequestHead, result: InferenceResult) -> Reply:
        if not result.ok and result.reason in RETRYABLE_REASONS:  # e.g. stopping for a model update
            return self._reply(head, HTTPStatus.SERVICE_UNAVAILABLE, result.to_json_bytes(), RETRY_AFTER)
        status = HTTPStatus.OK if result.ok else HTTPStatus.UNPROCESSABLE_ENTITY
        return self._reply(head, status, result.to_json_bytes())

    def refuse(self, status: HTTPStatus, detail: str, retry: bool = False) -> Reply:
        return refusal(status, detail, RETRY_AFTER if retry else ())

    @staticmethod
    def _reply(
        head: RequestHead, status: HTTPStatus, body: bytes, extra: tuple[tuple[str, str], ...] = ()
    ) -> Reply:
        """An answer the request earned: the connection stays open if the client keeps it."""
        keep = head.keep_alive
        announce = keep and head.version == "HTTP/1.0"
        return response(status, body, close=not keep, announce_keep_alive=announce, extra=extra), keep
