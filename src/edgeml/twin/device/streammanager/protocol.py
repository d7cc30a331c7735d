"""Request and response shapes per operation, taken from the SDK's own data classes.

Decoding goes through each class's `from_dict` and the SDK's validator (`UtilInternal.is_invalid`), and
responses through `as_dict`, so the twin cannot drift from what the client writes and reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2
from stream_manager import data as sm
from stream_manager.utilinternal import UtilInternal

from edgeml.twin.device.streammanager.errors import InvalidRequestError
from edgeml.twin.device.streammanager.framing import encode_frame, sniff_request_id

PROTOCOL_VERSION: str = sm.VersionInfo.PROTOCOL_VERSION.value
SUPPORTED_PROTOCOL_VERSIONS = (PROTOCOL_VERSION, "1.0.0")
SERVER_VERSION = "edgeml-twin-1.0.0"


@dataclass(frozen=True)
class OperationSpec:
    """How one request operation is decoded and which response operation answers it."""

    request_type: Any
    response_type: Any
    response_operation: int


OPERATIONS: dict[int, OperationSpec] = {
    sm.Operation.Connect.value: OperationSpec(
        sm.ConnectRequest, sm.ConnectResponse, sm.Operation.ConnectResponse.value
    ),
    sm.Operation.CreateMessageStream.value: OperationSpec(
        sm.CreateMessageStreamRequest,
        sm.CreateMessageStreamResponse,
        sm.Operation.CreateMessageStreamResponse.value,
    ),
    sm.Operation.UpdateMessageStream.value: OperationSpec(
        sm.UpdateMessageStreamRequest,
        sm.UpdateMessageStreamResponse,
        sm.Operation.UpdateMessageStreamResponse.value,
    ),
    sm.Operation.DeleteMessageStream.value: OperationSpec(
        sm.DeleteMessageStreamRequest,
        sm.DeleteMessageStreamResponse,
        sm.Operation.DeleteMessageStreamResponse.value,
    ),
    sm.Operation.DescribeMessageStream.value: OperationSpec(
        sm.DescribeMessageStreamRequest,
        sm.DescribeMessageStreamResponse,
        sm.Operation.DescribeMessageStreamResponse.value,
    ),
    sm.Operation.ListStreams.value: OperationSpec(
        sm.ListStreamsRequest, sm.ListStreamsResponse, sm.Operation.ListStreamsResponse.value
    ),
    sm.Operation.AppendMessage.value: OperationSpec(
        sm.AppendMessageRequest, sm.AppendMessageResponse, sm.Operation.AppendMessageResponse.value
    ),
    sm.Operation.ReadMessages.value: OperationSpec(
        sm.ReadMessagesRequest, sm.ReadMessagesResponse, sm.Operation.ReadMessagesResponse.value
    ),
}

UNKNOWN_OPERATION_ERROR: int = sm.Operation.UnknownOperationError.value
UNKNOWN_OPERATION_STATUS: int = sm.ResponseStatusCode.UnknownOperation.value
SUCCESS_STATUS: int = sm.ResponseStatusCode.Success.value
APPEND_REQUEST: int = sm.Operation.AppendMessage.value
APPEND_RESPONSE: int = sm.Operation.AppendMessageResponse.value


def decode_request(spec: OperationSpec, payload: bytes) -> Any:
    """The request object for `payload`, validated as the SDK validates it before sending.

    Raises InvalidRequestError (with the request id when it can be found) for anything else.
    """
    try:
        fields = cbor2.loads(payload)
        if not isinstance(fields, dict):
            raise TypeError("payload is not a CBOR map")
        request = spec.request_type.from_dict(fields)
    except Exception as error:
        raise InvalidRequestError(f"malformed request payload: {error}") from error
    problem = UtilInternal.is_invalid(request)
    if problem:
        raise InvalidRequestError(str(problem))
    return request


# The SDK's AppendMessageRequest.as_dict() always comes out of cbor2 as this map, in this key order.
_APPEND_HEAD = b"\xa3\x69requestId"
_APPEND_NAME_KEY = b"\x64name"
_APPEND_PAYLOAD_KEY = b"\x67payload"
_TEXT_STRING = 3
_BYTE_STRING = 2


def _string_item(payload: bytes, position: int, major: int) -> tuple[int, int]:
    """(start, end) of the definite-length CBOR string of `major` type at `position`; ValueError otherwise."""
    initial = payload[position]
    if initial >> 5 != major:
        raise ValueError("unexpected CBOR item")
    info = initial & 0x1F
    if info < 24:
        start, length = position + 1, info
    elif info == 24:
        start, length = position + 2, payload[position + 1]
    elif info == 25:
        start, length = position + 3, int.from_bytes(payload[position + 1 : position + 3], "big")
    elif info == 26:
        start, length = position + 5, int.from_bytes(payload[position + 1 : position + 5], "big")
    else:
        raise ValueError("unsupported CBOR string length")
    end = start + length
    if end > len(payload):
        raise ValueError("truncated CBOR string")
    return start, end


def _decode_append_exact(payload: bytes) -> tuple[str, str, bytes]:
    """The hot path: `{"requestId": text, "name": text, "payload": bytes}` exactly as the SDK writes it.

    Raises ValueError (or IndexError/UnicodeDecodeError) for anything else; the caller then decodes the
    payload the general way, so this only ever accepts what cbor2 would decode to the same values.
    """
    if not payload.startswith(_APPEND_HEAD):
        raise ValueError("not the SDK's key order")
    start, end = _string_item(payload, len(_APPEND_HEAD), _TEXT_STRING)
    request_id = payload[start:end].decode()
    if not payload.startswith(_APPEND_NAME_KEY, end):
        raise ValueError("not the SDK's key order")
    start, end = _string_item(payload, end + len(_APPEND_NAME_KEY), _TEXT_STRING)
    name = payload[start:end].decode()
    if not payload.startswith(_APPEND_PAYLOAD_KEY, end):
        raise ValueError("not the SDK's key order")
    start, end = _string_item(payload, end + len(_APPEND_PAYLOAD_KEY), _BYTE_STRING)
    if end != len(payload) or not request_id or not name:
        raise ValueError("trailing bytes or empty fields")
    return request_id, name, payload[start:end]


def decode_append(payload: bytes) -> tuple[str, str, bytes]:
    """(request id, stream name, message) of an AppendMessageRequest, the hot path, with type checks only.

    What the SDK sends is sliced straight out of the payload (`_decode_append_exact`); any other shape
    goes through cbor2. The full SDK validation is skipped because the stream lookup rejects any name
    that is not a stream, and the request id is only echoed back.
    """
    try:
        return _decode_append_exact(payload)
    except (ValueError, IndexError):
        pass
    try:
        fields = cbor2.loads(payload)
    except Exception as error:
        raise InvalidRequestError(f"malformed request payload: {error}") from error
    if not isinstance(fields, dict):
        raise InvalidRequestError("malformed request payload: not a CBOR map")
    request_id, name, data = fields.get("requestId"), fields.get("name"), fields.get("payload")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidRequestError("Property request_id is required, but was None")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("Property name is required, but was None")
    if not isinstance(data, bytes):
        raise InvalidRequestError("Property payload is required and must be bytes")
    return request_id, name, data


_RESPONSE_HEAD = b"\xa3\x69requestId"
_RESPONSE_MIDDLE = b"\x66status" + bytes((SUCCESS_STATUS,)) + b"\x6esequenceNumber"


def _cbor_head(major: int, value: int) -> bytes:
    """A CBOR item head (major type and length or value) in its shortest form, as cbor2 writes it."""
    tag = major << 5
    if value < 24:
        return bytes((tag | value,))
    if value < 0x100:
        return bytes((tag | 24, value))
    if value < 0x10000:
        return bytes((tag | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((tag | 26,)) + value.to_bytes(4, "big")
    return bytes((tag | 27,)) + value.to_bytes(8, "big")


def append_response_frame(request_id: str, sequence_number: int) -> bytes:
    """The AppendMessageResponse frame, byte for byte what cbor2 makes of `AppendMessageResponse.as_dict()`.

    Built from precomputed pieces instead of going through cbor2: it is answered once per append.
    """
    encoded_id = request_id.encode()
    body = b"".join(
        (
            _RESPONSE_HEAD,
            _cbor_head(_TEXT_STRING, len(encoded_id)),
            encoded_id,
            _RESPONSE_MIDDLE,
            _cbor_head(0, sequence_number),
        )
    )
    return encode_frame(APPEND_RESPONSE, body)


def request_id_of(payload: bytes) -> str | None:
    """Best-effort request id of a payload that could not be decoded."""
    return sniff_request_id(payload)


def response_frame(spec: OperationSpec, response: Any) -> bytes:
    """A complete frame for a response object."""
    return encode_frame(spec.response_operation, cbor2.dumps(response.as_dict()))


def error_frame(spec: OperationSpec | None, request_id: str | None, status_code: int, message: str) -> bytes:
    """The error answer for an operation (or UnknownOperationError when the operation is not known)."""
    fields: dict[str, Any] = {"status": status_code, "errorMessage": message}
    if request_id is not None:
        fields["requestId"] = request_id
    operation = spec.response_operation if spec is not None else UNKNOWN_OPERATION_ERROR
    return encode_frame(operation, cbor2.dumps(fields))
