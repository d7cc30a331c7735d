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


def decode_append(payload: bytes) -> tuple[str, str, bytes]:
    """(request id, stream name, message) of an AppendMessageRequest, the hot path, with type checks only.

    Same wire shape as `AppendMessageRequest.as_dict()`; the full SDK validation is skipped because the
    stream lookup rejects any name that is not a stream, and the request id is only echoed back.
    """
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


def append_response_frame(request_id: str, sequence_number: int) -> bytes:
    """The AppendMessageResponse frame (the shape of `AppendMessageResponse.as_dict()`)."""
    fields = {"requestId": request_id, "status": SUCCESS_STATUS, "sequenceNumber": sequence_number}
    return encode_frame(APPEND_RESPONSE, cbor2.dumps(fields))


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
