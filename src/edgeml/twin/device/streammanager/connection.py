"""One client connection: the connect handshake (version byte, protocol version, auth token), then frames.

Requests on a connection are answered concurrently (a blocking read does not hold up an append sent
after it); each response is written as one frame. A frame over the size limit is drained and answered
with RequestPayloadTooLarge; bytes that no longer split into frames get one error answer and the
connection is closed. Other connections are unaffected either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from typing import Any

from stream_manager import data as sm

from edgeml.twin.device.streammanager.dispatch import RequestDispatcher
from edgeml.twin.device.streammanager.errors import (
    FramingError,
    InvalidRequestError,
    RequestPayloadTooLargeError,
)
from edgeml.twin.device.streammanager.framing import CONNECT_VERSION, Frame, OversizedFrame, read_frame
from edgeml.twin.device.streammanager.protocol import (
    OPERATIONS,
    SERVER_VERSION,
    SUPPORTED_PROTOCOL_VERSIONS,
    decode_request,
    error_frame,
    response_frame,
)

_CONNECT = OPERATIONS[sm.Operation.Connect.value]
_log = logging.getLogger(__name__)


class ClientConnection:
    """Serves one accepted socket until the client goes away or the server stops."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        dispatcher: RequestDispatcher,
        auth_token: str | None,
        max_request_bytes: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.dispatcher = dispatcher
        self.auth_token = auth_token
        self.max_request_bytes = max_request_bytes
        self._in_flight: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        try:
            if await self._handshake():
                await self._serve_frames()
        except FramingError as error:
            self.writer.write(error_frame(None, None, error.status_code, str(error)))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for task in self._in_flight:
                task.cancel()
            with contextlib.suppress(Exception):
                await self.writer.drain()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _handshake(self) -> bool:
        version = (await self.reader.readexactly(1))[0]
        frame = await read_frame(self.reader, self.max_request_bytes)
        if frame is None:
            return False
        status, message, request = self._check_connect(version, frame)
        response = sm.ConnectResponse(
            request_id=getattr(request, "request_id", None),
            status=sm.ResponseStatusCode(status),
            error_message=message,
            supported_protocol_versions=list(SUPPORTED_PROTOCOL_VERSIONS),
            server_version=SERVER_VERSION,
        )
        if status == sm.ResponseStatusCode.Success.value:
            response.protocol_version = _agreed_protocol(request)
            response.client_identifier = str(uuid.uuid4())
        self.writer.write(bytes([CONNECT_VERSION]) + response_frame(_CONNECT, response))
        await self.writer.drain()
        return bool(status == sm.ResponseStatusCode.Success.value)

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
        if self.auth_token is not None and not hmac.compare_digest(
            (request.auth_token or "").encode(), self.auth_token.encode()
        ):
            return sm.ResponseStatusCode.Unauthorized.value, "invalid auth token", request
        return sm.ResponseStatusCode.Success.value, None, request

    async def _serve_frames(self) -> None:
        while True:
            frame = await read_frame(self.reader, self.max_request_bytes)
            if frame is None:
                return
            if isinstance(frame, OversizedFrame):
                error = RequestPayloadTooLargeError(
                    f"request payload of {frame.payload_length} bytes is over the limit of "
                    f"{self.max_request_bytes} bytes"
                )
                spec = OPERATIONS.get(frame.operation)
                self.writer.write(error_frame(spec, frame.request_id, error.status_code, str(error)))
                continue
            task = asyncio.get_running_loop().create_task(self._answer(frame))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _answer(self, frame: Frame) -> None:
        response = await self.dispatcher.handle(frame.operation, frame.payload)
        if not self.writer.is_closing():
            self.writer.write(response)
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()


def _agreed_protocol(request: Any) -> str | None:
    for version in [request.protocol_version, *(request.other_supported_protocol_versions or [])]:
        if version in SUPPORTED_PROTOCOL_VERSIONS:
            return str(version)
    return None
