"""Eventstream headers: a name (1-byte length), a type byte and a typed value, all big-endian.

Value encodings (aws-c-event-stream): bool true/false carry no bytes; byte, int16, int32, int64 are
signed fixed width; byte_buf and string have a 2-byte length; timestamp is int64 milliseconds;
uuid is 16 raw bytes.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from enum import IntEnum

from edgeml.twin.device.ipc.errors import FramingError

HeaderValue = bool | int | bytes | str | uuid.UUID

MAX_NAME_BYTES = 255
MAX_VARIABLE_VALUE_BYTES = 0xFFFF


class HeaderType(IntEnum):
    """Type byte of a header value, as numbered in awscrt.eventstream.HeaderType."""

    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    BYTE_BUF = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


_FIXED_FORMATS: dict[HeaderType, struct.Struct] = {
    HeaderType.BYTE: struct.Struct(">b"),
    HeaderType.INT16: struct.Struct(">h"),
    HeaderType.INT32: struct.Struct(">i"),
    HeaderType.INT64: struct.Struct(">q"),
    HeaderType.TIMESTAMP: struct.Struct(">q"),
}
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class Header:
    """One typed header."""

    name: str
    type: HeaderType
    value: HeaderValue

    @classmethod
    def string(cls, name: str, value: str) -> Header:
        return cls(name, HeaderType.STRING, value)

    @classmethod
    def int32(cls, name: str, value: int) -> Header:
        return cls(name, HeaderType.INT32, value)

    @classmethod
    def boolean(cls, name: str, value: bool) -> Header:
        return cls(name, HeaderType.BOOL_TRUE if value else HeaderType.BOOL_FALSE, value)


def encode_header(header: Header) -> bytes:
    """Wire bytes of one header."""
    name = header.name.encode()
    if not 0 < len(name) <= MAX_NAME_BYTES:
        raise FramingError(f"header name must be 1..{MAX_NAME_BYTES} bytes: {header.name!r}")
    head = bytes((len(name),)) + name + bytes((header.type,))
    kind, value = header.type, header.value
    if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        return head
    fixed = _FIXED_FORMATS.get(kind)
    if fixed is not None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise FramingError(f"header {header.name!r} of type {kind.name} needs an int")
        try:
            return head + fixed.pack(value)
        except struct.error as error:
            raise FramingError(f"header {header.name!r}: {value} does not fit {kind.name}") from error
    if kind == HeaderType.UUID:
        if not isinstance(value, uuid.UUID):
            raise FramingError(f"header {header.name!r} of type UUID needs a uuid.UUID")
        return head + value.bytes
    raw = value.encode() if isinstance(value, str) else value
    if not isinstance(raw, bytes):
        raise FramingError(f"header {header.name!r} of type {kind.name} needs str or bytes")
    if len(raw) > MAX_VARIABLE_VALUE_BYTES:
        raise FramingError(f"header {header.name!r} value is longer than {MAX_VARIABLE_VALUE_BYTES} bytes")
    return head + _U16.pack(len(raw)) + raw


def encode_headers(headers: list[Header]) -> bytes:
    """Wire bytes of a header block."""
    return b"".join(encode_header(header) for header in headers)


def decode_headers(block: bytes | memoryview) -> list[Header]:
    """Parses a whole header block; raises FramingError on truncation or an unknown type byte."""
    data = memoryview(block)
    headers: list[Header] = []
    offset, end = 0, len(data)
    try:
        while offset < end:
            name_len = data[offset]
            offset += 1
            if name_len == 0 or offset + name_len + 1 > end:
                raise FramingError("header name runs past the header block")
            name = bytes(data[offset : offset + name_len]).decode()
            offset += name_len
            kind = HeaderType(data[offset])
            offset += 1
            value: HeaderValue
            if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
                value = kind == HeaderType.BOOL_TRUE
            elif kind in _FIXED_FORMATS:
                fixed = _FIXED_FORMATS[kind]
                if offset + fixed.size > end:
                    raise FramingError(f"header {name!r} value runs past the header block")
                (value,) = fixed.unpack_from(data, offset)
                offset += fixed.size
            elif kind == HeaderType.UUID:
                if offset + 16 > end:
                    raise FramingError(f"header {name!r} value runs past the header block")
                value = uuid.UUID(bytes=bytes(data[offset : offset + 16]))
                offset += 16
            else:
                if offset + 2 > end:
                    raise FramingError(f"header {name!r} length runs past the header block")
                (length,) = _U16.unpack_from(data, offset)
                offset += 2
                if offset + length > end:
                    raise FramingError(f"header {name!r} value runs past the header block")
                raw = bytes(data[offset : offset + length])
                offset += length
                value = raw.decode() if kind == HeaderType.STRING else raw
            headers.append(Header(name, kind, value))
    except ValueError as error:  # unknown type byte or undecodable UTF-8
        raise FramingError(f"bad header: {error}") from error
    return headers
