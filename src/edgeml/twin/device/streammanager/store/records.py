"""The on-disk record: `u32 payload length | u32 crc32 | i64 sequence number | i64 ingest ms | payload`.

The CRC covers sequence number, ingest time and payload, so a torn or half-written tail is recognised on
recovery and cut off, and a damaged record is reported on read instead of returned.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

HEADER = struct.Struct(">IIqq")
HEADER_BYTES = HEADER.size
_CHECKED = struct.Struct(">qq")


@dataclass(frozen=True)
class StoredMessage:
    """One message as stored: its sequence number, ingest time (epoch ms) and payload."""

    sequence_number: int
    ingest_time_ms: int
    payload: bytes


class CorruptRecord(ValueError):
    """Bytes at an offset are not a complete, intact record."""


def record_size(payload_length: int) -> int:
    """Bytes a message of this payload length takes in a segment (and in the stream's size budget)."""
    return HEADER_BYTES + payload_length


def encode_record(message: StoredMessage) -> bytes:
    return encode_record_fields(message.sequence_number, message.ingest_time_ms, message.payload)


def encode_record_fields(sequence_number: int, ingest_time_ms: int, payload: bytes) -> bytes:
    """`encode_record` without a StoredMessage (the append hot path)."""
    crc = zlib.crc32(payload, zlib.crc32(_CHECKED.pack(sequence_number, ingest_time_ms)))
    return HEADER.pack(len(payload), crc, sequence_number, ingest_time_ms) + payload


def decode_record(buffer: bytes | memoryview, offset: int = 0) -> tuple[StoredMessage, int]:
    """The record at `offset` and the offset just past it; CorruptRecord if torn or damaged."""
    if len(buffer) - offset < HEADER_BYTES:
        raise CorruptRecord(f"torn header at offset {offset}")
    length, crc, sequence_number, ingest_ms = HEADER.unpack_from(buffer, offset)
    end = offset + HEADER_BYTES + length
    if end > len(buffer):
        raise CorruptRecord(f"torn payload at offset {offset}")
    payload = bytes(buffer[offset + HEADER_BYTES : end])
    if zlib.crc32(payload, zlib.crc32(_CHECKED.pack(sequence_number, ingest_ms))) != crc:
        raise CorruptRecord(f"checksum mismatch at offset {offset}")
    return StoredMessage(sequence_number, ingest_ms, payload), end


@dataclass(frozen=True)
class ScanResult:
    """What recovery found in one segment file: record offsets, where the intact part ends, newest ingest."""

    offsets: list[int]
    valid_bytes: int
    newest_ingest_ms: int
    torn: bool


def scan_records(buffer: bytes, first_sequence_number: int) -> ScanResult:
    """Walks a segment's records in order; stops at the first torn, damaged or out-of-sequence record."""
    offsets: list[int] = []
    offset = 0
    newest = 0
    while offset < len(buffer):
        try:
            message, end = decode_record(buffer, offset)
        except CorruptRecord:
            return ScanResult(offsets, offset, newest, torn=True)
        if message.sequence_number != first_sequence_number + len(offsets):
            return ScanResult(offsets, offset, newest, torn=True)
        offsets.append(offset)
        newest = max(newest, message.ingest_time_ms)
        offset = end
    return ScanResult(offsets, offset, newest, torn=False)
