"""Segment records and recovery scanning: whatever a crash leaves, the intact prefix is kept exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeml.twin.device.streammanager.store.records import (
    HEADER_BYTES,
    CorruptRecord,
    StoredMessage,
    decode_record,
    encode_record,
    scan_records,
)


def encode_all(payloads: list[bytes], first: int = 0) -> tuple[bytes, list[int]]:
    data, ends = b"", []
    for index, payload in enumerate(payloads):
        data += encode_record(StoredMessage(first + index, 1_700_000_000_000 + index, payload))
        ends.append(len(data))
    return data, ends


def test_round_trip() -> None:
    message = StoredMessage(42, 1_700_000_000_123, b"payload \x00\xff")
    decoded, end = decode_record(encode_record(message))
    assert decoded == message
    assert end == HEADER_BYTES + len(message.payload)


def test_damaged_record_is_detected() -> None:
    data = bytearray(encode_record(StoredMessage(0, 1, b"abcdef")))
    data[-1] ^= 1
    with pytest.raises(CorruptRecord):
        decode_record(bytes(data))


def test_scan_stops_at_a_sequence_gap() -> None:
    data = encode_record(StoredMessage(5, 1, b"a")) + encode_record(StoredMessage(7, 1, b"b"))
    scan = scan_records(data, first_sequence_number=5)
    assert scan.offsets == [0]
    assert scan.torn


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=20), st.data())
def test_scan_keeps_exactly_the_complete_records_of_a_torn_file(
    payloads: list[bytes], data: st.DataObject
) -> None:
    encoded, ends = encode_all(payloads, first=100)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    scan = scan_records(encoded[:cut], first_sequence_number=100)
    complete = [end for end in ends if end <= cut]
    assert len(scan.offsets) == len(complete)
    assert scan.valid_bytes == (complete[-1] if complete else 0)
    assert scan.torn == (cut != scan.valid_bytes)
