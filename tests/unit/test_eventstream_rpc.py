"""Eventstream RPC envelope: routing headers, JSON application messages and modelled errors, as
awscrt/awsiot read them."""

from __future__ import annotations

import json

import pytest

from edgeml.twin.device.ipc.errors import ProtocolViolation, ResourceNotFoundError
from edgeml.twin.device.ipc.framing import decode_message, encode_message
from edgeml.twin.device.ipc.headers import Header
from edgeml.twin.device.ipc.rpc import (
    CONTENT_TYPE_HEADER,
    SERVICE_MODEL_TYPE_HEADER,
    MessageFlag,
    MessageType,
    encode_application,
    parse_rpc,
)


def test_application_error_carries_the_error_shape_and_terminates() -> None:
    error = ResourceNotFoundError("Key not found: a/b", resource_type="KeyPath", resource_name="a/b")
    frame = encode_application(
        3, error.model_name, json.dumps(error.payload()).encode(), error=True, terminate=True
    )
    rpc = parse_rpc(decode_message(frame))
    assert (rpc.type, rpc.flags, rpc.stream_id) == (
        MessageType.APPLICATION_ERROR,
        MessageFlag.TERMINATE_STREAM,
        3,
    )
    assert rpc.headers[SERVICE_MODEL_TYPE_HEADER] == "aws.greengrass#ResourceNotFoundError"
    assert rpc.headers[CONTENT_TYPE_HEADER] == "application/json"
    assert json.loads(rpc.payload) == {
        "message": "Key not found: a/b",
        "resourceType": "KeyPath",
        "resourceName": "a/b",
    }


def test_new_stream_exposes_its_operation() -> None:
    frame = encode_message(
        [
            Header.int32(":message-type", 0),
            Header.int32(":message-flags", 0),
            Header.int32(":stream-id", 1),
            Header.string("operation", "aws.greengrass#PublishToTopic"),
        ]
    )
    rpc = parse_rpc(decode_message(frame))
    assert rpc.operation == "aws.greengrass#PublishToTopic"
    assert not rpc.terminates_stream


def test_routing_headers_are_required_and_typed() -> None:
    with pytest.raises(ProtocolViolation, match="missing"):
        parse_rpc(decode_message(encode_message([Header.int32(":message-type", 0)])))
    wrong_type = [
        Header.string(":message-type", "0"),
        Header.int32(":message-flags", 0),
        Header.int32(":stream-id", 0),
    ]
    with pytest.raises(ProtocolViolation, match="int32"):
        parse_rpc(decode_message(encode_message(wrong_type)))
