"""The SDK's wire framing: a connect-version byte at connect, then frames of
`int32 big-endian length (operation byte + payload) | operation byte | CBOR payload`.

See `stream_manager/utilinternal.py` (`encode_frame`) and `streammanagerclient.py`
(`__read_message_frame`, `__connect_request_response`).
"""

from __future__ import annotations

import asyncio
import io
import struct
from dataclasses import dataclass

import cbor2

from edgeml.twin.device.streammanager.errors import FramingError

CONNECT_VERSION = 1
_LENGTH = struct.Struct(">i")
_SNIFF_BYTES = 4096
_DISCARD_CHUNK = 1 << 16


@dataclass(frozen=True)
class Frame:
    """One complete frame: the operation code and its CBOR payload."""

    operation: int
    payload: bytes


@dataclass(frozen=True)
class OversizedFrame:
    """A frame whose payload was over the limit; it was read and discarded to keep the stream in step."""

    operation: int
    payload_length: int
    request_id: str | None


def encode_frame(operation: int, payload: bytes) -> bytes:
    """One frame as the client reads it (length counts the operation byte)."""
    return _LENGTH.pack(len(payload) + 1) + bytes([operation]) + payload


async def read_frame(reader: asyncio.StreamReader, max_payload_bytes: int) -> Frame | OversizedFrame | None:
    """Reads the next frame; None at a clean end of stream between frames.

    Raises FramingError when the length prefix is impossible or the stream ends inside a frame.
    """
    try:
        header = await reader.readexactly(5)
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise FramingError("connection closed inside a frame header") from error
    (length,) = _LENGTH.unpack(header[:4])
    operation = header[4]
    if length < 1:
        raise FramingError(f"frame length {length} is not positive")
    payload_length = length - 1
    try:
        if payload_length <= max_payload_bytes:
            return Frame(operation, await reader.readexactly(payload_length))
        prefix = await reader.readexactly(min(payload_length, _SNIFF_BYTES))
        remaining = payload_length - len(prefix)
        while remaining:
            chunk = await reader.readexactly(min(remaining, _DISCARD_CHUNK))
            remaining -= len(chunk)
    except asyncio.IncompleteReadError as error:
        raise FramingError("connection closed inside a frame payload") from error
    return OversizedFrame(operation, payload_length, sniff_request_id(prefix))


def sniff_request_id(payload_prefix: bytes) -> str | None:
    """The `requestId` of a CBOR map from its first bytes, decoding entries one by one until it appears.

    The SDK writes `requestId` first, so a truncated or partly broken payload usually still names it.
    """
    if not payload_prefix or payload_prefix[0] >> 5 != 5:
        return None
    decoder = cbor2.CBORDecoder(io.BytesIO(payload_prefix))
    try:
        entries = _map_length(payload_prefix, decoder)
        for _ in range(entries):
            key = decoder.decode()
            value = decoder.decode()
            if key == "requestId":
                return value if isinstance(value, str) else None
    except Exception:
        return None
    return None


def _map_length(payload: bytes, decoder: cbor2.CBORDecoder) -> int:
    """Consumes the map header and returns its entry count (indefinite-length maps read up to 64 entries)."""
    info = payload[0] & 0x1F
    decoder.read(1)
    if info < 24:
        return info
    if info == 31:
        return 64
    width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if width is None:
        raise ValueError("bad CBOR map header")
    return int.from_bytes(decoder.read(width), "big")
