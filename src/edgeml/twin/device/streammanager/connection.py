"""One client connection: the connect handshake (version byte, protocol version, auth token), then frames.

The connection is an `asyncio.Protocol`: bytes are split into frames as they arrive (`FrameDecoder`),
appends are written and queued for the group commit straight from `data_received`, and their answers are
written to the transport by the commit round; no coroutine, task or future exists per append. Other
requests run as one task each, so they are answered concurrently (a blocking read does not hold up an
append sent after it); each response is written as one frame. A frame over the size limit is drained
and answered with RequestPayloadTooLarge; bytes that no longer split into frames get one error answer
and the connection is closed. Other connections are unaffected either way.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import Callable
from typing import Any

from stream_manager import data as sm

from edgeml.twin.device.streammanager.dispatch import RequestDispatcher
from edgeml.twin.device.streammanager.errors import (
    FramingError,
    InvalidRequestError,
    RequestPayloadTooLargeError,
)
from edgeml.twin.device.streammanager.framing import CONNECT_VERSION, Frame, FrameDecoder, OversizedFrame
from edgeml.twin.device.streammanager.protocol import (
    APPEND_REQUEST,
    OPERATIONS,
    SERVER_VERSION,
    SUPPORTED_PROTOCOL_VERSIONS,
    decode_request,
    error_frame,
    response_frame,
)

_CONNECT = OPERATIONS[sm.Operation.Connect.value]
_SUCCESS = sm.ResponseStatusCode.Success.value
_log = logging.getLogger(__name__)


class ClientConnection(asyncio.Protocol):
    """Serves one accepted socket until the client goes away or the server stops.

    The connect request's token must equal `auth_token`, or, with `token_validator`, be one it accepts
    (None for both: any token)."""

    def __init__(
        self,
        dispatcher: RequestDispatcher,
        auth_token: str | None,
        max_request_bytes: int,
        on_closed: Callable[[ClientConnection], None] | None = None,
        token_validator: Callable[[str], bool] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.auth_token = auth_token
        self.token_validator = token_validator
        self.max_request_bytes = max_request_bytes
        self._on_closed = on_closed
        self._decoder = FrameDecoder(max_request_bytes)
        self._transport: asyncio.Transport | None = None
        self._version: int | None = None  # the connect-version byte, once read
        self._connected = False
        self._closed = False
        self._in_flight: set[asyncio.Task[None]] = set()

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        if self._version is None:
            self._version = data[0]
            data = data[1:]
        frames = self._decoder.feed(data)
        append, reply = self.dispatcher.append, self.reply
        for frame in frames:
            if self._closed:
                return
            if type(frame) is Frame and frame[0] == APPEND_REQUEST and self._connected:
                append(frame[1], reply, self)
            else:
                self._frame(frame)
        if self._decoder.error is not None:
            self._fail(self._decoder.error)

    def eof_received(self) -> bool | None:
        try:
            self._decoder.finish()
        except FramingError as error:
            self._fail(error)
        return None  # close the transport (pending answers go nowhere, as with any client gone away)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        for task in self._in_flight:
            task.cancel()
        if self._on_closed is not None:
            self._on_closed(self)

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()  # a client that does not read its answers gets no more served

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.resume_reading()

    # -- serving -------------------------------------------------------------------------------------

    def reply(self, frame: bytes) -> None:
        """Writes one response frame, unless the client has gone away meanwhile."""
        if not self._closed and self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame)

    @property
    def in_flight(self) -> list[asyncio.Task[None]]:
        """Requests other than appends still being answered."""
        return list(self._in_flight)

    def close(self) -> None:
        """Closes the connection (buffered answers are still sent)."""
        if self._transport is not None:
            self._transport.close()

    def _frame(self, frame: Frame | OversizedFrame) -> None:
        if not self._connected:
            self._handshake(frame)
        elif isinstance(frame, OversizedFrame):
            error = RequestPayloadTooLargeError(
                f"request payload of {frame.payload_length} bytes is over the limit of "
                f"{self.max_request_bytes} bytes"
            )
            spec = OPERATIONS.get(frame.operation)
            self.reply(error_frame(spec, frame.request_id, error.status_code, str(error)))
        else:
            task = asyncio.get_running_loop().create_task(self._answer(frame))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _answer(self, frame: Frame) -> None:
        self.reply(await self.dispatcher.handle(frame.operation, frame.payload))

    def _fail(self, error: FramingError) -> None:
        self.reply(error_frame(None, None, error.status_code, str(error)))
        self._closed = True
        self.close()

    def _handshake(self, frame: Frame | OversizedFrame) -> None:
        status, message, request = self._check_connect(self._version or 0, frame)
        response = sm.ConnectResponse(
            request_id=getattr(request, "request_id", None),
            status=sm.ResponseStatusCode(status),
            error_message=message,
            supported_protocol_versions=list(SUPPORTED_PROTOCOL_VERSIONS),
            server_version=SERVER_VERSION,
        )
        if status == _SUCCESS:
            response.protocol_version = _agreed_protocol(request)
            response.client_identifier = str(uuid.uuid4())
        self.reply(bytes([CONNECT_VERSION]) + response_frame(_CONNECT, response))
        if status == _SUCCESS:
            self._connected = True
        else:
            self._closed = True
            self.close()

    def _check_connect(self, version: int, frame: Frame | OversizedFrame) -> tuple[int, str | None, Any]:
        """(status code, error message, decoded request) for a connect attempt."""
        if version != CONNECT_VERSION:
            return sm.ResponseStatusCode.UnsupportedConnectVersion.value, f"connect version {version}", None
        if not isinstance(frame, Frame) or frame.operation != sm.Operation.Connect.value:
            return sm.ResponseStatusCode.UnexpectedOperation.value, "the first frame must be Connect", None
        try:
            request = decode_request(_CONNECT, frame.payload)
        except InvalidRequestError as error:
            return error.status_code, str(error), None
        if _agreed_protocol(request) is None:
            return (
                sm.ResponseStatusCode.UnsupportedProtocolVersion.value,
                f"protocol {request.protocol_version} is not one of {', '.join(SUPPORTED_PROTOCOL_VERSIONS)}",
                request,
            )
        token = request.auth_token or ""
        if self.token_validator is not None and not self.token_validator(token):
            return sm.ResponseStatusCode.Unauthorized.value, "invalid auth token", request
        if self.auth_token is not None and not hmac.compare_digest(token.encode(), self.auth_token.encode()):
            return sm.ResponseStatusCode.Unauthorized.value, "invalid auth token", request
        return sm.ResponseStatusCode.Success.value, None, request


def _agreed_protocol(request: Any) -> str | None:
    for version in [request.protocol_version, *(request.other_supported_protocol_versions or [])]:
        if version in SUPPORTED_PROTOCOL_VERSIONS:
            return str(version)
    return None
