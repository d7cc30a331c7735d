"""One component's connection: the CONNECT handshake (SVCUID in the payload), then per-operation
streams routed by `:stream-id` to the operation handlers.

A frame that fails its CRC or length checks closes this connection only; other clients keep going.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from edgeml.twin.device.ipc.components import ComponentRecord
from edgeml.twin.device.ipc.errors import (
    FramingError,
    InvalidArgumentsError,
    ModelledServiceError,
    ProtocolViolation,
    ServiceError,
)
from edgeml.twin.device.ipc.framing import read_message
from edgeml.twin.device.ipc.operations import OPERATIONS, DeviceServices, OperationContext
from edgeml.twin.device.ipc.rpc import (
    PROTOCOL_VERSION,
    VERSION_HEADER,
    MessageFlag,
    MessageType,
    RpcMessage,
    encode_rpc,
    parse_rpc,
)
from edgeml.twin.device.ipc.streams import OperationStream

HANDSHAKE_TIMEOUT_S = 10.0
MAX_UNSENT_BYTES = 64 * 1024 * 1024  # a client that stops reading is cut off past this
REJECT_LINGER_S = 2.0
_log = logging.getLogger(__name__)


class ClientConnection:
    """Serves one accepted Unix socket connection on the server's event loop."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, services: DeviceServices
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._services = services
        self._streams: dict[int, OperationStream] = {}
        self._last_stream_id = 0
        self.component: ComponentRecord | None = None

    @property
    def is_open(self) -> bool:
        return not self._writer.is_closing()

    def send_frame(self, frame: bytes) -> None:
        """Queues a frame; a client that leaves more than MAX_UNSENT_BYTES unread is disconnected."""
        if self._writer.is_closing():
            return
        if self._writer.transport.get_write_buffer_size() + len(frame) > MAX_UNSENT_BYTES:
            _log.warning("closing IPC connection of %s: it stopped reading its events", self._who)
            self.close()
            return
        self._writer.write(frame)

    async def serve(self) -> None:
        """Runs the connection until the client leaves, breaks the protocol, or the server stops."""
        try:
            self.component = await self._handshake()
            if self.component is None:
                return
            while (message := await read_message(self._reader)) is not None:
                self._route(parse_rpc(message))
                await self._writer.drain()
        except FramingError as error:
            _log.warning("closing IPC connection of %s: %s", self._who, error)
        except ProtocolViolation as error:
            _log.warning("closing IPC connection of %s: %s", self._who, error)
            self._send_protocol_error(str(error))
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self.close()

    @property
    def _who(self) -> str:
        return self.component.name if self.component else "an unauthenticated client"

    def close(self) -> None:
        """Ends every stream (undoing subscriptions) and closes the socket."""
        streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            stream.finish()
        if not self._writer.is_closing():
            self._writer.close()

    async def _handshake(self) -> ComponentRecord | None:
        message = await asyncio.wait_for(read_message(self._reader), HANDSHAKE_TIMEOUT_S)
        if message is None:
            return None
        rpc = parse_rpc(message)
        if rpc.type != MessageType.CONNECT or rpc.stream_id != 0:
            raise ProtocolViolation("the first message must be CONNECT on stream 0")
        if rpc.headers.get(VERSION_HEADER) != PROTOCOL_VERSION:
            raise ProtocolViolation(f"unsupported {VERSION_HEADER} {rpc.headers.get(VERSION_HEADER)!r}")
        record = self._services.components.by_token(self._auth_token(rpc.payload))
        if record is None:
            _log.warning("refusing IPC connection: unknown SVCUID")
            self.send_frame(encode_rpc(MessageType.CONNECT_ACK, MessageFlag.NONE, 0))
            await self._linger()
            return None
        self.send_frame(encode_rpc(MessageType.CONNECT_ACK, MessageFlag.CONNECTION_ACCEPTED, 0))
        return record

    @staticmethod
    def _auth_token(payload: bytes) -> str:
        try:
            body = json.loads(payload) if payload else {}
        except ValueError:
            return ""
        token = body.get("authToken") if isinstance(body, dict) else None
        return token if isinstance(token, str) else ""

    async def _linger(self) -> None:
        """After a refused CONNECT, lets the client close first so it sees the refusal, not a reset."""
        await self._writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self._reader.read(), REJECT_LINGER_S)

    def _send_protocol_error(self, reason: str) -> None:
        payload = json.dumps({"message": reason}).encode()
        with contextlib.suppress(Exception):  # the socket may already be gone
            self.send_frame(encode_rpc(MessageType.PROTOCOL_ERROR, MessageFlag.NONE, 0, payload=payload))

    def _route(self, rpc: RpcMessage) -> None:
        if rpc.stream_id == 0:
            if rpc.type == MessageType.PING:
                self.send_frame(encode_rpc(MessageType.PING_RESPONSE, MessageFlag.NONE, 0))
                return
            raise ProtocolViolation(f"unexpected {rpc.type.name} on stream 0")
        if rpc.type not in (MessageType.APPLICATION_MESSAGE, MessageType.APPLICATION_ERROR):
            raise ProtocolViolation(f"{rpc.type.name} is not allowed on a stream")
        stream = self._streams.get(rpc.stream_id)
        if stream is not None:
            if rpc.terminates_stream:
                del self._streams[rpc.stream_id]
                stream.finish()
            return
        if rpc.stream_id <= self._last_stream_id:
            return  # a late message for a stream that already ended
        operation = rpc.operation
        if operation is None:
            raise ProtocolViolation(f"new stream {rpc.stream_id} carries no operation header")
        self._last_stream_id = rpc.stream_id
        self._start_operation(rpc, operation)

    def _start_operation(self, rpc: RpcMessage, operation: str) -> None:
        assert self.component is not None
        stream = OperationStream(self, rpc.stream_id, operation, self.component.name)
        spec = OPERATIONS.get(operation)
        if spec is None:
            stream.fail(ServiceError(f"Operation {operation} is not served by the edgeml IPC twin"))
            return
        try:
            request = self._request_body(rpc.payload)
            if spec.streaming:
                self._streams[rpc.stream_id] = stream
            response = spec.handler(OperationContext(self._services, self.component, stream), request)
            stream.respond(spec.response_model, response, terminate=not spec.streaming)
        except ModelledServiceError as error:
            stream.fail(error)
        except Exception as error:
            _log.exception("%s failed for %s", operation, self.component.name)
            stream.fail(ServiceError(f"{operation} failed in the twin: {type(error).__name__}: {error}"))
        if stream.closed:
            self._streams.pop(rpc.stream_id, None)

    @staticmethod
    def _request_body(payload: bytes) -> dict[str, Any]:
        try:
            body = json.loads(payload) if payload else {}
        except ValueError as error:
            raise InvalidArgumentsError(f"request is not JSON: {error}") from error
        if not isinstance(body, dict):
            raise InvalidArgumentsError("request must be a JSON object")
        return body
