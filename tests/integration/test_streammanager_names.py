"""Every stream name and export identifier the SDK accepts (1-255 characters of `[\\w ,.\\-_]`, \\w being
Unicode) works on disk, across kill -9, and stores written by the older layout (`s_<quoted name>`,
`exports/<identifier>.json`) open with their messages and export checkpoints."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from stream_manager import (
    ExportDefinition,
    KinesisConfig,
    MessageStreamDefinition,
    ReadMessagesOptions,
    ResourceNotFoundException,
    StrategyOnFull,
    StreamManagerClient,
)

from edgeml.twin.cloud.motoserver import MotoServer
from edgeml.twin.cloud.readback import kinesis_payloads
from edgeml.twin.device.streammanager.process import StreamManagerProcess

TOKEN = "names-test-token"
EVERYTHING = ReadMessagesOptions(min_message_count=1, max_message_count=10_000)
NAMES = [
    "n" * 255,  # the longest valid name
    "é" * 255,  # 510 bytes in UTF-8
    "数据" * 127 + "流",  # 255 characters, 765 bytes
    "ein Strom, mit Leerzeichen.-_ " * 8 + "x" * 15,  # every allowed punctuation, 255 characters
    ".",
    "..",
]


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", TOKEN)


@contextlib.contextmanager
def client_on(port: int) -> Iterator[StreamManagerClient]:
    client = StreamManagerClient(port=port, request_timeout=10)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kinesis_stream(prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client = boto3.client("kinesis")
    client.create_stream(StreamName=name, ShardCount=1)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


def test_every_valid_name_and_identifier_survives_kill_9_and_delete(aws: MotoServer, tmp_path: Path) -> None:
    identifier = "k" * 255
    target = kinesis_stream("names")
    store = tmp_path / "store"
    server = StreamManagerProcess(store, TOKEN, env=aws.env()).start()
    try:
        with client_on(server.port) as client:
            for name in NAMES:
                client.create_message_stream(
                    MessageStreamDefinition(name=name, strategy_on_full=StrategyOnFull.RejectNewData)
                )
                client.append_message(name, f"first in {name}".encode())
            client.create_message_stream(
                MessageStreamDefinition(
                    name="exported",
                    strategy_on_full=StrategyOnFull.RejectNewData,
                    export_definition=ExportDefinition(
                        kinesis=[KinesisConfig(identifier=identifier, kinesis_stream_name=target)]
                    ),
                )
            )
            client.append_message("exported", b"e0")
            wait_until(
                lambda: (
                    client.describe_message_stream("exported")
                    .export_statuses[0]
                    .last_exported_sequence_number
                    == 0
                ),
                "the first export",
            )
        server.kill()
        server.start()
        with client_on(server.port) as client:
            assert sorted(client.list_streams()) == sorted([*NAMES, "exported"])
            for name in NAMES:
                assert client.append_message(name, b"second") == 1
                assert [m.payload for m in client.read_messages(name, EVERYTHING)] == [
                    f"first in {name}".encode(),
                    b"second",
                ]
            client.append_message("exported", b"e1")
            wait_until(
                lambda: (
                    client.describe_message_stream("exported")
                    .export_statuses[0]
                    .last_exported_sequence_number
                    == 1
                ),
                "the export after the restart",
            )
            for name in NAMES:
                client.delete_message_stream(name)
                with pytest.raises(ResourceNotFoundException):
                    client.describe_message_stream(name)
            assert client.list_streams() == ["exported"]
    finally:
        server.stop()
    assert kinesis_payloads(target) == [b"e0", b"e1"]  # the checkpoint held across the kill: no re-send


# A store written by the twin before stream directories were named by hash (same twin, previous commit):
# two File streams, one with a Kinesis exporter whose checkpoint says messages 0 and 1 were delivered.
OLDER_STORE = {
    "streams/s_camera frames, v1.0/00000000000000000000.log": bytes.fromhex(
        "00000002ccb251420000000000000000000001a231e9e7816d30"
        "000000027f74a8910000000000000001000001a231e9e7866d31"
    ),
    "streams/s_camera frames, v1.0/definition.json": json.dumps(
        {
            "name": "camera frames, v1.0",
            "maxSize": 268435456,
            "streamSegmentSize": 16777216,
            "strategyOnFull": 0,
            "persistence": 0,
            "exportDefinition": {
                "kinesis": [
                    {"identifier": "to kinesis, v1", "kinesisStreamName": "edgeml-legacy-store-target"}
                ]
            },
        }
    ).encode(),
    "streams/s_camera frames, v1.0/exports/to kinesis, v1.json": json.dumps(
        {
            "next_sequence_number": 2,
            "last_exported_sequence_number": 1,
            "exported_bytes": 4,
            "exported_messages": 2,
            "last_export_time_ms": 1796133742508,
        }
    ).encode(),
    "streams/s_gr%C3%BC%C3%9Fe/00000000000000000000.log": bytes.fromhex(
        "00000005f94c83ec0000000000000000000001a231e9e78668616c6c6f"
    ),
    "streams/s_gr%C3%BC%C3%9Fe/definition.json": json.dumps(
        {
            "name": "grüße",
            "maxSize": 268435456,
            "streamSegmentSize": 16777216,
            "strategyOnFull": 0,
            "persistence": 0,
        }
    ).encode(),
}


def write_older_store(store: Path, kinesis_target: str) -> None:
    for relative, content in OLDER_STORE.items():
        path = store / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.replace(b"edgeml-legacy-store-target", kinesis_target.encode()))


def test_a_store_of_the_older_layout_opens_with_its_messages_and_checkpoints(
    aws: MotoServer, tmp_path: Path
) -> None:
    target = kinesis_stream("older-store")
    store = tmp_path / "store"
    write_older_store(store, target)
    server = StreamManagerProcess(store, TOKEN, env=aws.env()).start()
    try:
        with client_on(server.port) as client:
            assert sorted(client.list_streams()) == ["camera frames, v1.0", "grüße"]
            assert [m.payload for m in client.read_messages("grüße", EVERYTHING)] == [b"hallo"]
            assert client.append_message("camera frames, v1.0", b"m2") == 2
            wait_until(
                lambda: (
                    client.describe_message_stream("camera frames, v1.0")
                    .export_statuses[0]
                    .last_exported_sequence_number
                    == 2
                ),
                "the export of the new message",
            )
            status = client.describe_message_stream("camera frames, v1.0").export_statuses[0]
            assert status.exported_messages_count == 3
        server.kill()  # the moved store is what the next start finds
        server.start()
        with client_on(server.port) as client:
            assert [m.payload for m in client.read_messages("camera frames, v1.0", EVERYTHING)] == [
                b"m0",
                b"m1",
                b"m2",
            ]
            client.delete_message_stream("camera frames, v1.0")
            client.delete_message_stream("grüße")
            assert client.list_streams() == []
    finally:
        server.stop()
    assert kinesis_payloads(target) == [b"m2"]  # 0 and 1 were delivered before: the checkpoint was kept
    assert list((store / "streams").iterdir()) == []  # nothing of either layout is left behind
