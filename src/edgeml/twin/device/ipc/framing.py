"""Eventstream message framing (awslabs/aws-c-event-stream).

    [total length u32][headers length u32][prelude CRC32 u32][headers][payload][message CRC32 u32]

The prelude CRC covers the first 8 bytes; the message CRC covers everything before it. Both are
checked on read: a mismatch raises FramingError, and the connection that sent it is closed.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from dataclasses import dataclass, field

from edgeml.twin.device.ipc.errors import FramingError
from edgeml.twin.device.ipc.headers import Header, decode_headers, encode_headers

PRELUDE_BYTES = 12
CRC_BYTES = 4
MIN_MESSAGE_BYTES = PRELUDE_BYTES + CRC_BYTES
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_HEADERS_BYTES = 128 * 1024

_PRELUDE = struct.Struct(">III")
_LENGTHS = struct.Struct(">II")
_CRC = struct.Struct(">I")


@dataclass(slots=True)
class Message:
    """One decoded eventstream message."""

    headers: list[Header] = field(default_factory=list)
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class Prelude:
    """The first 12 bytes of a message, checked."""

    total_length: int
    headers_length: int


def encode_message(
    headers: list[Header], payload: bytes = b"", *, header_block: bytes | None = None
) -> bytes:
    """Frames `headers` (or an already encoded `header_block`) and `payload` with both CRCs."""
    block = encode_headers(headers) if header_block is None else header_block
    total = MIN_MESSAGE_BYTES + len(block) + len(payload)
    if total > MAX_MESSAGE_BYTES:
        raise FramingError(f"message of {total} bytes exceeds {MAX_MESSAGE_BYTES}")
    lengths = _LENGTHS.pack(total, len(block))
    prelude = lengths + _CRC.pack(zlib.crc32(lengths))
    body_crc = zlib.crc32(payload, zlib.crc32(block, zlib.crc32(prelude)))
    return b"".join((prelude, block, payload, _CRC.pack(body_crc)))


def decode_prelude(raw: bytes) -> Prelude:
    """Checks the prelude's CRC and lengths."""
    if len(raw) != PRELUDE_BYTES:
        raise FramingError(f"prelude must be {PRELUDE_BYTES} bytes, got {len(raw)}")
    total, headers_length, crc = _PRELUDE.unpack(raw)
    if zlib.crc32(raw[:8]) != crc:
        raise FramingError("prelude CRC mismatch")
    if not MIN_MESSAGE_BYTES <= total <= MAX_MESSAGE_BYTES:
        raise FramingError(f"message length {total} outside {MIN_MESSAGE_BYTES}..{MAX_MESSAGE_BYTES}")
    if headers_length > MAX_HEADERS_BYTES or headers_length > total - MIN_MESSAGE_BYTES:
        raise FramingError(f"headers length {headers_length} does not fit message length {total}")
    return Prelude(total, headers_length)


def decode_body(prelude_bytes: bytes, prelude: Prelude, rest: bytes) -> Message:
    """Checks the message CRC of a message whose prelude was already read, then splits it."""
    if len(rest) != prelude.total_length - PRELUDE_BYTES:
        raise FramingError("message body is truncated")
    (crc,) = _CRC.unpack_from(rest, len(rest) - CRC_BYTES)
    if zlib.crc32(rest[:-CRC_BYTES], zlib.crc32(prelude_bytes)) != crc:
        raise FramingError("message CRC mismatch")
    headers = decode_headers(memoryview(rest)[: prelude.headers_length])
    return Message(headers, rest[prelude.headers_length : -CRC_BYTES])


def decode_message(raw: bytes) -> Message:
    """Decodes exactly one whole message."""
    prelude = decode_prelude(raw[:PRELUDE_BYTES])
    return decode_body(raw[:PRELUDE_BYTES], prelude, raw[PRELUDE_BYTES:])


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """Reads the next message; None on a clean end of stream before a new message starts."""
    try:
        head = await reader.readexactly(PRELUDE_BYTES)
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise FramingError("connection closed inside a message prelude") from error
    prelude = decode_prelude(head)
    try:
        rest = await reader.readexactly(prelude.total_length - PRELUDE_BYTES)
    except asyncio.IncompleteReadError as error:
        raise FramingError("connection closed inside a message") from error
    return decode_body(head, prelude, rest)
