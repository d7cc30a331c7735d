"""Framing: frames as the SDK writes them, oversized frames drained, impossible lengths refused."""

from __future__ import annotations

import struct

import cbor2
import pytest
from stream_manager.data import AppendMessageRequest, MessageFrame, Operation
from stream_manager.utilinternal import UtilInternal

from edgeml.twin.device.streammanager.errors import FramingError
from edgeml.twin.device.streammanager.framing import (
    Frame,
    FrameDecoder,
    OversizedFrame,
    encode_frame,
    sniff_request_id,
)


def decode_in_pieces(data: bytes, piece: int, limit: int) -> list[Frame | OversizedFrame]:
    """Feeds `data` `piece` bytes at a time, as a socket may deliver it, then checks it ended cleanly."""
    decoder = FrameDecoder(limit)
    frames: list[Frame | OversizedFrame] = []
    for start in range(0, len(data), piece):
        frames += decoder.feed(data[start : start + piece])
    decoder.finish()
    assert decoder.between_frames
    return frames


def sdk_frame(payload: bytes, operation: Operation = Operation.AppendMessage) -> bytes:
    return b"".join(UtilInternal.encode_frame(MessageFrame(operation=operation, payload=payload)))


def test_encode_matches_the_sdk() -> None:
    assert encode_frame(Operation.AppendMessage.value, b"abc") == sdk_frame(b"abc")


@pytest.mark.parametrize("piece", [1, 2, 5, 7, 1 << 20])
def test_reads_frames_written_by_the_sdk_then_clean_eof(piece: int) -> None:
    data = sdk_frame(b"one") + sdk_frame(b"", Operation.ListStreams) + sdk_frame(b"x" * 300)
    assert decode_in_pieces(data, piece, 1000) == [
        Frame(Operation.AppendMessage.value, b"one"),
        Frame(Operation.ListStreams.value, b""),
        Frame(Operation.AppendMessage.value, b"x" * 300),
    ]


@pytest.mark.parametrize("piece", [3, 1000, 65536, 1 << 20])
def test_oversized_frame_is_drained_and_names_its_request(piece: int) -> None:
    payload = cbor2.dumps(
        AppendMessageRequest(request_id="req-7", name="s", payload=b"x" * 100_000).as_dict()
    )
    frames = decode_in_pieces(sdk_frame(payload) + sdk_frame(b"next"), piece, 1024)
    assert frames == [
        OversizedFrame(Operation.AppendMessage.value, len(payload), "req-7"),
        Frame(Operation.AppendMessage.value, b"next"),
    ]


def test_a_large_frame_in_many_pieces_is_not_copied_per_piece() -> None:
    payload = b"y" * (4 << 20)
    decoder = FrameDecoder(8 << 20)
    data = sdk_frame(payload)
    frames: list[Frame | OversizedFrame] = []
    for start in range(0, len(data), 4096):
        frames += decoder.feed(data[start : start + 4096])
    assert frames == [Frame(Operation.AppendMessage.value, payload)]
    assert decoder.between_frames


def test_frames_before_an_impossible_length_are_kept() -> None:
    decoder = FrameDecoder(100)
    frames = decoder.feed(sdk_frame(b"ok") + struct.pack(">i", 0) + b"\x04" + sdk_frame(b"ignored"))
    assert frames == [Frame(Operation.AppendMessage.value, b"ok")]
    assert decoder.error is not None
    assert decoder.feed(sdk_frame(b"later")) == []


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
    decoder = FrameDecoder(100)
    decoder.feed(data)
    with pytest.raises(FramingError):
        decoder.finish()


def test_request_id_from_a_truncated_payload() -> None:
    payload = cbor2.dumps({"requestId": "abc", "name": "stream", "payload": b"x" * 50})
    assert sniff_request_id(payload[:16]) == "abc"
    assert sniff_request_id(payload[:14]) is None
    assert sniff_request_id(b"\xff\xfe") is None
    assert sniff_request_id(cbor2.dumps([1, 2])) is None
