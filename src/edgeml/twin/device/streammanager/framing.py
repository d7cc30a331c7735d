"""The SDK's wire framing: a connect-version byte at connect, then frames of
`int32 big-endian length (operation byte + payload) | operation byte | CBOR payload`.

See `stream_manager/utilinternal.py` (`encode_frame`) and `streammanagerclient.py`
(`__read_message_frame`, `__connect_request_response`).

`FrameDecoder` splits bytes as they arrive from the socket (the connection is an `asyncio.Protocol`, so
there is no per-frame coroutine or stream read): complete frames come out of `feed` as soon as their last
byte is in, and a frame over the size limit is drained as it arrives without being kept in memory.
"""

from __future__ import annotations

import io
import struct
from typing import NamedTuple

import cbor2

from edgeml.twin.device.streammanager.errors import FramingError

CONNECT_VERSION = 1
HEADER_BYTES = 5
_LENGTH = struct.Struct(">i")
_SNIFF_BYTES = 4096


class Frame(NamedTuple):
    """One complete frame: the operation code and its CBOR payload."""

    operation: int
    payload: bytes


class OversizedFrame(NamedTuple):
    """A frame whose payload was over the limit; it was read and discarded to keep the stream in step."""

    operation: int
    payload_length: int
    request_id: str | None


def encode_frame(operation: int, payload: bytes) -> bytes:
    """One frame as the client reads it (length counts the operation byte)."""
    return _LENGTH.pack(len(payload) + 1) + bytes((operation,)) + payload


class _Discard:
    """An oversized frame being drained: its first bytes are kept to find the request id."""

    __slots__ = ("operation", "payload_length", "prefix", "remaining")

    def __init__(self, operation: int, payload_length: int) -> None:
        self.operation = operation
        self.payload_length = payload_length
        self.remaining = payload_length
        self.prefix = bytearray()


class FrameDecoder:
    """Incremental frame splitter for one connection.

    `feed` returns the frames completed by the bytes given. When the length prefix is impossible (< 1)
    the frames before it are still returned, `error` is set and everything after it is ignored.
    """

    def __init__(self, max_payload_bytes: int) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.error: FramingError | None = None
        self._pending = bytearray()
        self._needed = HEADER_BYTES  # bytes `_pending` must hold before it can be parsed again
        self._discard: _Discard | None = None

    @property
    def between_frames(self) -> bool:
        """True when no frame is partly received (a clean place for the stream to end)."""
        return not self._pending and self._discard is None

    def feed(self, data: bytes) -> list[Frame | OversizedFrame]:
        frames: list[Frame | OversizedFrame] = []
        if self.error is not None:
            return frames
        if self._pending:
            self._pending += data
            if len(self._pending) < self._needed:
                return frames  # a large frame still arriving: no copy until it is complete
            data = bytes(self._pending)
            self._pending.clear()
        position, end = 0, len(data)
        while position < end:
            if self._discard is not None:
                position = self._drain(data, position, frames)
                continue
            if end - position < HEADER_BYTES:
                self._needed = HEADER_BYTES
                break
            (length,) = _LENGTH.unpack_from(data, position)
            if length < 1:
                self.error = FramingError(f"frame length {length} is not positive")
                return frames
            start = position + HEADER_BYTES
            stop = start + length - 1
            if length - 1 > self.max_payload_bytes:
                self._discard = _Discard(data[position + 4], length - 1)
                position = start
                continue
            if stop > end:
                self._needed = stop - position
                break
            frames.append(Frame(data[position + 4], data[start:stop]))
            position = stop
        if position < end:
            self._pending += data[position:] if position else data
        return frames

    def finish(self) -> None:
        """At end of stream: raises the framing error, or FramingError if the stream ended inside a frame."""
        if self.error is not None:
            raise self.error
        if self._discard is not None or len(self._pending) >= HEADER_BYTES:
            raise FramingError("connection closed inside a frame payload")
        if self._pending:
            raise FramingError("connection closed inside a frame header")

    def _drain(self, data: bytes, position: int, frames: list[Frame | OversizedFrame]) -> int:
        discard = self._discard
        assert discard is not None
        take = min(discard.remaining, len(data) - position)
        wanted = _SNIFF_BYTES - len(discard.prefix)
        if wanted > 0:
            discard.prefix += data[position : position + min(take, wanted)]
        discard.remaining -= take
        if not discard.remaining:
            self._discard = None
            request_id = sniff_request_id(bytes(discard.prefix))
            frames.append(OversizedFrame(discard.operation, discard.payload_length, request_id))
        return position + take


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
