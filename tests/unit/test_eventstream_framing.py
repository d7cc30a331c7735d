"""Eventstream framing: round trips of every header type, agreement with botocore's independent
decoder, and every corruption of a frame detected."""

from __future__ import annotations

import uuid

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.twin.device.ipc.errors import FramingError
from edgeml.twin.device.ipc.framing import MAX_MESSAGE_BYTES, decode_message, encode_message
from edgeml.twin.device.ipc.headers import Header, HeaderType

names = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
headers = st.one_of(
    st.builds(Header.boolean, names, st.booleans()),
    st.builds(lambda n, v: Header(n, HeaderType.BYTE, v), names, st.integers(-(2**7), 2**7 - 1)),
    st.builds(lambda n, v: Header(n, HeaderType.INT16, v), names, st.integers(-(2**15), 2**15 - 1)),
    st.builds(Header.int32, names, st.integers(-(2**31), 2**31 - 1)),
    st.builds(lambda n, v: Header(n, HeaderType.INT64, v), names, st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda n, v: Header(n, HeaderType.BYTE_BUF, v), names, st.binary(max_size=300)),
    st.builds(Header.string, names, st.text(max_size=100)),
    st.builds(lambda n, v: Header(n, HeaderType.TIMESTAMP, v), names, st.integers(0, 2**62)),
    st.builds(lambda n, v: Header(n, HeaderType.UUID, v), names, st.uuids()),
)


@given(st.lists(headers, max_size=8), st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_round_trip_keeps_headers_and_payload(header_list: list[Header], payload: bytes) -> None:
    decoded = decode_message(encode_message(header_list, payload))
    assert decoded.headers == header_list
    assert decoded.payload == payload


@given(st.lists(headers, max_size=6, unique_by=lambda h: h.name), st.binary(max_size=500))
@settings(max_examples=100, deadline=None)
def test_botocore_decodes_what_we_encode(header_list: list[Header], payload: bytes) -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_message(header_list, payload))
    (message,) = list(buffer)
    assert message.payload == payload
    for header in header_list:
        value = message.headers[header.name]
        if header.type == HeaderType.UUID:
            assert isinstance(header.value, uuid.UUID)
            assert value == header.value.bytes
        elif header.type == HeaderType.TIMESTAMP:
            continue  # botocore turns it into a datetime
        else:
            assert value == header.value


def test_every_flipped_byte_is_detected() -> None:
    frame = encode_message([Header.string(":content-type", "application/json")], b'{"topic": "a"}')
    for index in range(len(frame)):
        corrupt = bytearray(frame)
        corrupt[index] ^= 0x01
        with pytest.raises(FramingError):
            decode_message(bytes(corrupt))


def test_oversized_and_truncated_frames_are_refused() -> None:
    with pytest.raises(FramingError, match="exceeds"):
        encode_message([], b"x" * MAX_MESSAGE_BYTES)
    frame = encode_message([Header.int32(":stream-id", 1)], b"payload")
    with pytest.raises(FramingError):
        decode_message(frame[:-3])


def test_header_values_out_of_range_are_refused() -> None:
    with pytest.raises(FramingError):
        encode_message([Header.int32("big", 2**31)])
    with pytest.raises(FramingError):
        encode_message([Header.string("x" * 256, "name too long")])
