"""Eventstream RPC on top of framing: the three routing headers every message carries, and the
headers of the JSON application layer (awscrt/eventstream/rpc.py, awsiot/eventstreamrpc.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from edgeml.twin.device.ipc.errors import ProtocolViolation
from edgeml.twin.device.ipc.framing import Message, encode_message
from edgeml.twin.device.ipc.headers import Header, HeaderType, HeaderValue, encode_headers

MESSAGE_TYPE_HEADER = ":message-type"
MESSAGE_FLAGS_HEADER = ":message-flags"
STREAM_ID_HEADER = ":stream-id"
OPERATION_HEADER = "operation"
VERSION_HEADER = ":version"
CONTENT_TYPE_HEADER = ":content-type"
SERVICE_MODEL_TYPE_HEADER = "service-model-type"
CONTENT_TYPE_JSON = "application/json"
PROTOCOL_VERSION = "0.1.0"


class MessageType(IntEnum):
    """`:message-type` values."""

    APPLICATION_MESSAGE = 0
    APPLICATION_ERROR = 1
    PING = 2
    PING_RESPONSE = 3
    CONNECT = 4
    CONNECT_ACK = 5
    PROTOCOL_ERROR = 6
    INTERNAL_ERROR = 7


class MessageFlag(IntFlag):
    """`:message-flags` bits."""

    NONE = 0
    CONNECTION_ACCEPTED = 0x1
    TERMINATE_STREAM = 0x2


@dataclass(slots=True)
class RpcMessage:
    """A message with its routing headers lifted out; `headers` keeps the rest by name."""

    type: MessageType
    flags: MessageFlag
    stream_id: int
    headers: dict[str, HeaderValue] = field(default_factory=dict)
    payload: bytes = b""

    @property
    def operation(self) -> str | None:
        value = self.headers.get(OPERATION_HEADER)
        return value if isinstance(value, str) else None

    @property
    def terminates_stream(self) -> bool:
        return bool(self.flags & MessageFlag.TERMINATE_STREAM)


def _int32(headers: list[Header], name: str) -> int:
    for header in headers:
        if header.name == name:
            if header.type != HeaderType.INT32 or not isinstance(header.value, int):
                raise ProtocolViolation(f"header {name} must be int32")
            return header.value
    raise ProtocolViolation(f"missing header {name}")


_ROUTING = (MESSAGE_TYPE_HEADER, MESSAGE_FLAGS_HEADER, STREAM_ID_HEADER)


def parse_rpc(message: Message) -> RpcMessage:
    """Lifts type, flags and stream id out of a framed message; ProtocolViolation if any is missing."""
    raw_type = _int32(message.headers, MESSAGE_TYPE_HEADER)
    try:
        kind = MessageType(raw_type)
    except ValueError as error:
        raise ProtocolViolation(f"unknown message type {raw_type}") from error
    flags = MessageFlag(_int32(message.headers, MESSAGE_FLAGS_HEADER) & 0x3)
    stream_id = _int32(message.headers, STREAM_ID_HEADER)
    rest = {header.name: header.value for header in message.headers if header.name not in _ROUTING}
    return RpcMessage(kind, flags, stream_id, rest, message.payload)


def _routing_block(kind: MessageType, flags: int, stream_id: int) -> bytes:
    return encode_headers(
        [
            Header.int32(MESSAGE_TYPE_HEADER, int(kind)),
            Header.int32(MESSAGE_FLAGS_HEADER, int(flags)),
            Header.int32(STREAM_ID_HEADER, stream_id),
        ]
    )


_JSON_CONTENT_BLOCK = encode_headers([Header.string(CONTENT_TYPE_HEADER, CONTENT_TYPE_JSON)])


def encode_rpc(
    kind: MessageType, flags: int, stream_id: int, headers: list[Header] | None = None, payload: bytes = b""
) -> bytes:
    """Frames one RPC message."""
    block = _routing_block(kind, flags, stream_id) + encode_headers(headers or [])
    return encode_message([], payload, header_block=block)


def encode_application(
    stream_id: int, model_name: str, payload: bytes, *, error: bool = False, terminate: bool = False
) -> bytes:
    """Frames a JSON APPLICATION_MESSAGE (or APPLICATION_ERROR) carrying the shape `model_name`."""
    kind = MessageType.APPLICATION_ERROR if error else MessageType.APPLICATION_MESSAGE
    flags = MessageFlag.TERMINATE_STREAM if terminate else MessageFlag.NONE
    block = (
        _routing_block(kind, flags, stream_id)
        + _JSON_CONTENT_BLOCK
        + encode_headers([Header.string(SERVICE_MODEL_TYPE_HEADER, model_name)])
    )
    return encode_message([], payload, header_block=block)
