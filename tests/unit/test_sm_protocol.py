"""The append hot path writes and reads exactly the SDK's shapes."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stream_manager.data import AppendMessageRequest, AppendMessageResponse, Operation, ResponseStatusCode

from edgeml.twin.device.streammanager.errors import InvalidRequestError
from edgeml.twin.device.streammanager.framing import encode_frame
from edgeml.twin.device.streammanager.protocol import append_response_frame, decode_append


def test_append_request_as_the_sdk_encodes_it() -> None:
    request = AppendMessageRequest(request_id="r-1", name="results", payload=b"\x00data")
    assert decode_append(cbor2.dumps(request.as_dict())) == ("r-1", "results", b"\x00data")


def test_append_response_as_the_sdk_decodes_it() -> None:
    frame = append_response_frame("r-2", 41)
    assert frame[4] == Operation.AppendMessageResponse.value
    response = AppendMessageResponse.from_dict(cbor2.loads(frame[5:]))
    assert (response.request_id, response.status, response.sequence_number) == (
        "r-2",
        ResponseStatusCode.Success,
        41,
    )


@pytest.mark.parametrize(
    "fields",
    [
        [1, 2],
        {"name": "s", "payload": b"x"},
        {"requestId": "r", "payload": b"x"},
        {"requestId": "r", "name": "s"},
    ],
)
def test_malformed_append_is_an_invalid_request(fields: object) -> None:
    with pytest.raises(InvalidRequestError):
        decode_append(cbor2.dumps(fields))


# -- the hand-written fast paths agree with cbor2 and the SDK ----------------------------------------

_TEXT = st.text(min_size=0, max_size=300)
_SEQUENCE = st.integers(min_value=0, max_value=2**63 - 1)


@settings(max_examples=300)
@given(request_id=_TEXT, sequence_number=_SEQUENCE)
def test_append_response_is_byte_for_byte_what_cbor2_makes(request_id: str, sequence_number: int) -> None:
    response = AppendMessageResponse(
        request_id=request_id, status=ResponseStatusCode.Success, sequence_number=sequence_number
    )
    expected = encode_frame(Operation.AppendMessageResponse.value, cbor2.dumps(response.as_dict()))
    assert append_response_frame(request_id, sequence_number) == expected


@settings(max_examples=300)
@given(
    request_id=st.text(min_size=1, max_size=300),
    name=st.text(min_size=1, max_size=300),
    payload=st.binary(max_size=70_000),
)
def test_sdk_append_requests_decode_as_cbor2_decodes_them(request_id: str, name: str, payload: bytes) -> None:
    encoded = cbor2.dumps(AppendMessageRequest(request_id=request_id, name=name, payload=payload).as_dict())
    assert decode_append(encoded) == (request_id, name, payload)


@settings(max_examples=500)
@given(data=st.data())
def test_any_mutation_of_an_append_decodes_as_cbor2_or_is_an_invalid_request(data: st.DataObject) -> None:
    """Flip, cut or extend the SDK's bytes: the fast path never returns what cbor2 would not."""
    encoded = bytearray(
        cbor2.dumps(AppendMessageRequest(request_id="r-9", name="stream", payload=b"p" * 30).as_dict())
    )
    action = data.draw(st.sampled_from(["flip", "cut", "extend"]))
    if action == "flip":
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    elif action == "cut":
        del encoded[data.draw(st.integers(0, len(encoded) - 1)) :]
    else:
        encoded += data.draw(st.binary(min_size=1, max_size=8))
    try:
        expected: object = cbor2.loads(bytes(encoded))
    except Exception:
        expected = None
    try:
        decoded: object = decode_append(bytes(encoded))
    except InvalidRequestError:
        decoded = None
    if decoded is not None:
        assert isinstance(expected, dict)
        assert decoded == (expected["requestId"], expected["name"], expected["payload"])


@pytest.mark.parametrize(
    "encoded",
    [
        b"\xa3\x69requestId\x63r-1\x64name\x61s\x67payload\x44ab",  # payload cut short
        b"\xa3\x69requestId\x62\xff\xfe\x64name\x61s\x67payload\x41a",  # request id not UTF-8
        b"\xa3\x69requestId\x60\x64name\x61s\x67payload\x41a",  # empty request id
        b"\xa3\x69requestId\x63r-1\x64name\x60\x67payload\x41a",  # empty name
        b"\xa3\x69requestId\x63r-1\x64name\x61s\x67payload\x61a",  # payload is text, not bytes
    ],
)
def test_broken_sdk_shaped_appends_are_invalid_requests(encoded: bytes) -> None:
    with pytest.raises(InvalidRequestError):
        decode_append(encoded)
