"""Durability and retention: kill -9 of the server process, torn tails, max_size strategies, TTL, Memory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stream_manager import (
    MessageStreamDefinition,
    Persistence,
    ReadMessagesOptions,
    StrategyOnFull,
    StreamManagerClient,
)
from stream_manager.exceptions import MessageStoreReadErrorException, ServerOutOfMemoryException

from edgeml.twin.device.streammanager import StreamManagerServer
from edgeml.twin.device.streammanager.process import StreamManagerProcess
from edgeml.twin.device.streammanager.server import ServerStartError
from edgeml.twin.device.streammanager.store.layout import stream_directory
from edgeml.twin.device.streammanager.store.records import HEADER_BYTES

TOKEN = "persistence-test-token"
EVERYTHING = ReadMessagesOptions(min_message_count=1, max_message_count=100_000)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", TOKEN)


@contextlib.contextmanager
def client_on(port: int, request_timeout: float = 10) -> Iterator[StreamManagerClient]:
    client = StreamManagerClient(port=port, request_timeout=request_timeout)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()


def segment_files(store: Path, stream: str) -> list[Path]:
    return sorted(stream_directory(store, stream).glob("*.log"))


def test_kill_9_during_appends_loses_no_acknowledged_message(tmp_path: Path) -> None:
    store = tmp_path / "store"
    server = StreamManagerProcess(store, TOKEN).start()
    try:
        with client_on(server.port) as admin:
            admin.create_message_stream(
                MessageStreamDefinition(
                    name="durable",
                    stream_segment_size=64 * 1024,
                    strategy_on_full=StrategyOnFull.RejectNewData,
                )
            )
        acknowledged: dict[int, bytes] = {}
        lock = threading.Lock()
        enough = threading.Event()

        def writer(worker: int) -> None:
            with client_on(server.port, request_timeout=3) as client:
                for i in range(100_000):
                    payload = f"{worker}-{i}-".encode() + bytes(200)
                    try:
                        sequence_number = client.append_message("durable", payload)
                    except Exception:
                        return
                    with lock:
                        acknowledged[sequence_number] = payload
                        if len(acknowledged) >= 600:
                            enough.set()

        writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        for thread in writers:
            thread.start()
        assert enough.wait(30), "writers made no progress"
        server.kill()
        for thread in writers:
            thread.join(timeout=20)
        assert len(segment_files(store, "durable")) > 1

        server.start()
        with client_on(server.port) as reader:
            stored = {m.sequence_number: m.payload for m in reader.read_messages("durable", EVERYTHING)}
            for sequence_number, payload in acknowledged.items():
                assert stored.get(sequence_number) == payload, f"acknowledged message {sequence_number} lost"
            assert sorted(stored) == list(range(len(stored)))
            assert reader.append_message("durable", b"after restart") == len(stored)
    finally:
        server.stop()


_APPENDER = """
import sys
from stream_manager import StreamManagerClient
worker, port = sys.argv[1], int(sys.argv[2])
clients = [StreamManagerClient(port=port, request_timeout=3) for _ in range(2)]
import threading
out = threading.Lock()
def run(index):
    client = clients[index]
    for i in range(1_000_000):
        payload = f"{worker}.{index}-{i}-".encode() + bytes(1000)
        try:
            sequence_number = client.append_message("burst", payload)
        except Exception:
            return
        with out:
            sys.stdout.write(f"{sequence_number} {worker}.{index} {i}\\n")
            sys.stdout.flush()
threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
for thread in threads: thread.start()
for thread in threads: thread.join()
"""


def test_kill_9_under_group_commit_from_several_processes_loses_nothing_and_keeps_order(
    tmp_path: Path,
) -> None:
    """4 processes x 2 clients append 1 KiB messages (rounds cover many); kill -9; all acked are back."""
    store = tmp_path / "store"
    server = StreamManagerProcess(store, TOKEN).start()
    try:
        with client_on(server.port) as admin:
            admin.create_message_stream(
                MessageStreamDefinition(
                    name="burst",
                    stream_segment_size=256 * 1024,
                    strategy_on_full=StrategyOnFull.RejectNewData,
                )
            )
        env = {**os.environ, **server.client_env()}
        children = [
            subprocess.Popen(
                [sys.executable, "-c", _APPENDER, str(worker), str(server.port)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for worker in range(4)
        ]
        acknowledged: dict[int, tuple[str, int]] = {}
        lock = threading.Lock()
        enough = threading.Event()

        def collect(child: subprocess.Popen[str]) -> None:
            assert child.stdout is not None
            for line in child.stdout:
                sequence_number, writer, index = line.split()
                with lock:
                    acknowledged[int(sequence_number)] = (writer, int(index))
                    if len(acknowledged) >= 1500:
                        enough.set()

        readers = [threading.Thread(target=collect, args=(child,)) for child in children]
        for thread in readers:
            thread.start()
        assert enough.wait(60), "appenders made no progress"
        server.kill()
        for child in children:
            child.wait(timeout=30)
        for thread in readers:
            thread.join(timeout=10)
        assert len(segment_files(store, "burst")) > 1

        server.start()
        with client_on(server.port) as reader:
            stored = {m.sequence_number: m.payload for m in reader.read_messages("burst", EVERYTHING)}
        assert sorted(stored) == list(range(len(stored)))
        for sequence_number, (writer, index) in acknowledged.items():
            payload = stored.get(sequence_number)
            assert payload == f"{writer}-{index}-".encode() + bytes(1000), (
                f"acknowledged {sequence_number} lost"
            )
        # Each client's messages are stored in the order it sent them, without gaps before its last ack.
        by_writer: dict[str, list[int]] = {}
        for sequence_number in sorted(stored):
            writer, index, _ = stored[sequence_number].split(b"-", 2)
            by_writer.setdefault(writer.decode(), []).append(int(index))
        for writer, indexes in by_writer.items():
            assert indexes == list(range(len(indexes))), f"{writer} out of order"
        assert len(by_writer) == 8
    finally:
        server.stop()


def test_torn_tail_is_cut_on_restart(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with StreamManagerServer(store, auth_token=TOKEN) as server, client_on(server.port) as client:
        client.create_message_stream(
            MessageStreamDefinition(name="torn", strategy_on_full=StrategyOnFull.RejectNewData)
        )
        for i in range(5):
            client.append_message("torn", f"message {i}".encode())
    (last,) = segment_files(store, "torn")
    intact_size = last.stat().st_size
    with last.open("ab") as handle:  # what a kill -9 in the middle of a write leaves behind
        handle.write(b"\x00\x00\x00\x40" + b"half a header")

    with StreamManagerServer(store, auth_token=TOKEN) as server, client_on(server.port) as client:
        assert [m.payload for m in client.read_messages("torn", EVERYTHING)] == [
            f"message {i}".encode() for i in range(5)
        ]
        assert client.append_message("torn", b"next") == 5
    assert last.stat().st_size == intact_size + HEADER_BYTES + len(b"next")


def test_damaged_record_is_reported_as_a_read_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with StreamManagerServer(store, auth_token=TOKEN) as server, client_on(server.port) as client:
        client.create_message_stream(
            MessageStreamDefinition(name="damaged", strategy_on_full=StrategyOnFull.RejectNewData)
        )
        for i in range(3):
            client.append_message("damaged", f"payload-{i}".encode())
        (segment,) = segment_files(store, "damaged")
        data = bytearray(segment.read_bytes())
        data[-3] ^= 0xFF  # flip a byte inside the last payload
        segment.write_bytes(bytes(data))
        assert [
            m.payload for m in client.read_messages("damaged", ReadMessagesOptions(max_message_count=2))
        ] == [
            b"payload-0",
            b"payload-1",
        ]
        with pytest.raises(MessageStoreReadErrorException):
            client.read_messages("damaged", ReadMessagesOptions(desired_start_sequence_number=2))


def test_reject_new_data_when_full(tmp_path: Path) -> None:
    with (
        StreamManagerServer(tmp_path / "store", auth_token=TOKEN) as server,
        client_on(server.port) as client,
    ):
        client.create_message_stream(
            MessageStreamDefinition(
                name="bounded",
                max_size=1024,
                stream_segment_size=1024,
                strategy_on_full=StrategyOnFull.RejectNewData,
            )
        )
        accepted = []
        with pytest.raises(ServerOutOfMemoryException):
            for _ in range(100):
                accepted.append(client.append_message("bounded", bytes(100)))
        assert accepted == list(range(1024 // (HEADER_BYTES + 100)))
        info = client.describe_message_stream("bounded").storage_status
        assert (info.oldest_sequence_number, info.newest_sequence_number) == (0, accepted[-1])
        assert info.total_bytes <= 1024
        assert len(client.read_messages("bounded", EVERYTHING)) == len(accepted)


def test_overwrite_oldest_data_drops_whole_oldest_segments(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with StreamManagerServer(store, auth_token=TOKEN) as server, client_on(server.port) as client:
        client.create_message_stream(
            MessageStreamDefinition(
                name="ring",
                max_size=4096,
                stream_segment_size=1024,
                strategy_on_full=StrategyOnFull.OverwriteOldestData,
            )
        )
        for i in range(100):
            assert client.append_message("ring", i.to_bytes(2, "big") + bytes(98)) == i
        info = client.describe_message_stream("ring").storage_status
        per_segment = 1024 // (HEADER_BYTES + 100)
        assert info.newest_sequence_number == 99
        assert info.oldest_sequence_number > 0
        assert info.oldest_sequence_number % per_segment == 0
        assert info.total_bytes <= 4096
        kept = client.read_messages("ring", EVERYTHING)
        assert [m.sequence_number for m in kept] == list(range(info.oldest_sequence_number, 100))
        assert [int.from_bytes(m.payload[:2], "big") for m in kept] == [m.sequence_number for m in kept]
        assert len(segment_files(store, "ring")) <= 4096 // 1024


def test_time_to_live_drops_expired_segments(tmp_path: Path) -> None:
    now = [1_000_000.0]
    server = StreamManagerServer(tmp_path / "store", auth_token=TOKEN, clock=lambda: now[0])
    with server, client_on(server.port) as client:
        client.create_message_stream(
            MessageStreamDefinition(
                name="fresh",
                stream_segment_size=1024,
                time_to_live_millis=60_000,
                strategy_on_full=StrategyOnFull.RejectNewData,
            )
        )
        for _ in range(20):
            client.append_message("fresh", bytes(100))
        now[0] += 30
        client.append_message("fresh", b"newer")
        assert client.describe_message_stream("fresh").storage_status.oldest_sequence_number == 0

        now[0] += 45  # the first 20 are 75 s old, "newer" 45 s
        deadline = time.monotonic() + 5
        while client.describe_message_stream("fresh").storage_status.oldest_sequence_number == 0:
            assert time.monotonic() < deadline, "expired segments were not dropped"
            time.sleep(0.1)
        kept = client.read_messages("fresh", EVERYTHING)
        assert kept[-1].payload == b"newer"
        assert kept[0].sequence_number > 0


def test_memory_streams_do_not_survive_a_restart_file_streams_do(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with StreamManagerServer(store, auth_token=TOKEN) as server, client_on(server.port) as client:
        for name, persistence in (("cam 1, front.v2", Persistence.File), ("in-memory", Persistence.Memory)):
            client.create_message_stream(
                MessageStreamDefinition(
                    name=name, persistence=persistence, strategy_on_full=StrategyOnFull.RejectNewData
                )
            )
            assert client.append_message(name, b"kept?") == 0
        assert [m.payload for m in client.read_messages("in-memory")] == [b"kept?"]
    with StreamManagerServer(store, auth_token=TOKEN) as server, client_on(server.port) as client:
        assert client.list_streams() == ["cam 1, front.v2"]
        assert [m.payload for m in client.read_messages("cam 1, front.v2")] == [b"kept?"]


def test_a_store_is_served_by_one_server_at_a_time(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with StreamManagerServer(store, auth_token=TOKEN), pytest.raises(ServerStartError, match="in use"):
        StreamManagerServer(store, auth_token=TOKEN).start()
    with StreamManagerServer(store, auth_token=TOKEN) as server, client_on(server.port) as client:
        assert client.list_streams() == []
