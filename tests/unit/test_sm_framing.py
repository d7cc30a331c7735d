"""Framing: frames as the SDK writes them, oversized frames drained, impossible lengths refused."""

from __future__ import annotations

import asyncio
import struct

import cbor2
import pytest
from stream_manager.data import AppendMessageRequest, MessageFrame, Operation
from stream_manager.utilinternal import UtilInternal

from edgeml.twin.device.streammanager.errors import FramingError
from edgeml.twin.device.streammanager.framing import (
    Frame,
    OversizedFrame,
    encode_frame,
    read_frame,
    sniff_request_id,
)


def reader_with(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def sdk_frame(payload: bytes, operation: Operation = Operation.AppendMessage) -> bytes:
    return b"".join(UtilInternal.encode_frame(MessageFrame(operation=operation, payload=payload)))


def test_encode_matches_the_sdk() -> None:
    assert encode_frame(Operation.AppendMessage.value, b"abc") == sdk_frame(b"abc")


def test_reads_frames_written_by_the_sdk_then_clean_eof() -> None:
    async def run() -> list[Frame | OversizedFrame | None]:
        reader = reader_with(sdk_frame(b"one") + sdk_frame(b"", Operation.ListStreams))
        return [await read_frame(reader, 100) for _ in range(3)]

    assert asyncio.run(run()) == [
        Frame(Operation.AppendMessage.value, b"one"),
        Frame(Operation.ListStreams.value, b""),
        None,
    ]


def test_oversized_frame_is_drained_and_names_its_request() -> None:
    payload = cbor2.dumps(
        AppendMessageRequest(request_id="req-7", name="s", payload=b"x" * 100_000).as_dict()
    )

    async def run() -> tuple[Frame | OversizedFrame | None, Frame | OversizedFrame | None]:
        reader = reader_with(sdk_frame(payload) + sdk_frame(b"next"))
        return await read_frame(reader, 1024), await read_frame(reader, 1024)

    oversized, following = asyncio.run(run())
    assert oversized == OversizedFrame(Operation.AppendMessage.value, len(payload), "req-7")
    assert following == Frame(Operation.AppendMessage.value, b"next")


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">i", 0) + b"\x04",
        struct.pack(">i", -3) + b"\x04",
        sdk_frame(b"cut short")[:-2],
        b"\x00\x00",
    ],
)
def test_broken_framing_is_an_error(data: bytes) -> None:
    async def run() -> None:
        await read_frame(reader_with(data), 100)

    with pytest.raises(FramingError):
        asyncio.run(run())


def test_request_id_from_a_truncated_payload() -> None:
    payload = cbor2.dumps({"requestId": "abc", "name": "stream", "payload": b"x" * 50})
    assert sniff_request_id(payload[:16]) == "abc"
    assert sniff_request_id(payload[:14]) is None
    assert sniff_request_id(b"\xff\xfe") is None
    assert sniff_request_id(cbor2.dumps([1, 2])) is None
