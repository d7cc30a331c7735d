"""Sinks: never blocking inference, and the Stream Manager streams (real SDK client, the twin server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edgeml_inference.sinks.base import AsyncSink, Sink
from edgeml_inference.sinks.iotcore import IoTCoreSink
from edgeml_inference.sinks.ipc import IpcTopicSink
from edgeml_inference.sinks.streammanager import StreamSink, StreamSpec, ensure_streams, s3_export_task
from inference_kit import FakeIpc
from stream_manager import (
    ExportDefinition,
    Persistence,
    ReadMessagesOptions,
    StrategyOnFull,
    StreamManagerClient,
)
from stream_manager.data import S3ExportTaskDefinition
from stream_manager.util import Util

from edgeml.twin.device.streammanager.server import StreamManagerServer


class BlockedSink(Sink):
    name = "blocked"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.release.wait(10)
        self.received.append(payload)


def test_a_stuck_sink_never_blocks_the_caller_and_counts_drops() -> None:
    blocked = BlockedSink()
    sink = AsyncSink(blocked, max_queue=4)
    accepted = [sink.offer(f"{index}".encode()) for index in range(50)]  # returns at once
    assert accepted.count(False) >= 45 and sink.dropped == accepted.count(False)
    blocked.release.set()
    sink.close()
    assert blocked.received[-1] == b"49"  # the newest results survive, the oldest were dropped


class SlowSink(Sink):
    """A destination slower than the producer: each send takes a little while."""

    name = "slow"

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def send(self, payload: bytes) -> None:
        threading.Event().wait(0.001)
        self.received.append(payload)


def test_with_sink_full_wait_a_slow_destination_slows_the_producer_and_loses_nothing() -> None:
    slow = SlowSink()
    sink = AsyncSink(slow, max_queue=4, full_wait_s=10.0)
    accepted = [sink.offer(f"{index}".encode()) for index in range(60)]
    sink.close()
    assert all(accepted) and sink.dropped == 0
    assert slow.received == [f"{index}".encode() for index in range(60)]  # every result, in order
    assert sink.stats()["waited_ms"] > 0  # the producer did wait for room


def test_sink_full_wait_is_bounded_by_a_stuck_destination() -> None:
    blocked = BlockedSink()
    sink = AsyncSink(blocked, max_queue=2, full_wait_s=0.05)
    accepted = [sink.offer(f"{index}".encode()) for index in range(6)]
    assert accepted.count(False) >= 2 and sink.dropped == accepted.count(False)  # waited, then dropped
    assert sink.waited_s >= 0.05
    blocked.release.set()
    sink.close()
    assert blocked.received[-1] == b"5"


def test_a_failing_sink_counts_failures_and_keeps_going() -> None:
    class Failing(Sink):
        calls = 0

        def send(self, payload: bytes) -> None:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("nucleus gone")

    failing = Failing()
    sink = AsyncSink(failing)
    sink.offer(b"a")
    sink.offer(b"b")
    sink.close()
    assert (sink.failed, sink.sent) == (1, 1)


def test_ipc_and_iot_core_sinks_follow_the_live_topic() -> None:
    ipc = FakeIpc()
    topic = {"name": "results/a"}
    IpcTopicSink(ipc, lambda: topic["name"]).send(b"1")
    topic["name"] = "results/b"
    IpcTopicSink(ipc, lambda: topic["name"]).send(b"2")
    IpcTopicSink(ipc, lambda: "").send(b"off")
    IoTCoreSink(ipc, lambda: ("edgeml/core/results", 1)).send(b"3")
    assert ipc.published == [("results/a", b"1"), ("results/b", b"2")]
    assert ipc.iot_core == [("edgeml/core/results", b"3", 1)]


@pytest.fixture()
def stream_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with StreamManagerServer(tmp_path / "store") as server:
        for key, value in server.client_env().items():
            monkeypatch.setenv(key, value)
        client = StreamManagerClient()
        yield client
        client.close()


def test_streams_are_created_with_file_persistence_budget_and_exports(stream_client: Any) -> None:
    specs = [
        StreamSpec("Results", 1024 * 1024, kinesis_stream="edgeml-results"),
        StreamSpec("Captures", 1024 * 1024, s3_export=True, status_stream="CaptureStatus"),
    ]
    ensure_streams(stream_client, specs)
    ensure_streams(stream_client, specs)  # idempotent: a restart finds them
    assert {"Results", "Captures", "CaptureStatus"} <= set(stream_client.list_streams())
    results = stream_client.describe_message_stream("Results").definition
    assert results.persistence == Persistence.File
    assert results.strategy_on_full == StrategyOnFull.OverwriteOldestData
    assert results.max_size == 1024 * 1024
    export: ExportDefinition = results.export_definition
    assert export.kinesis[0].kinesis_stream_name == "edgeml-results"
    captures = stream_client.describe_message_stream("Captures").definition
    assert captures.export_definition.s3_task_executor[0].status_config.status_stream_name == "CaptureStatus"


def test_stream_sink_appends_results_readable_in_order(stream_client: Any) -> None:
    ensure_streams(stream_client, [StreamSpec("Results", 1024 * 1024)])
    sink = AsyncSink(StreamSink(stream_client, "Results"))
    for index in range(20):
        sink.offer(json.dumps({"n": index}).encode())
    sink.close()
    messages = stream_client.read_messages(
        "Results",
        ReadMessagesOptions(desired_start_sequence_number=0, min_message_count=20, read_timeout_millis=5000),
    )
    assert [json.loads(message.payload)["n"] for message in messages] == list(range(20))


def test_capture_export_task_is_what_the_s3_exporter_reads(tmp_path: Path) -> None:
    data = s3_export_task(str(tmp_path / "x.png"), "bucket", "captures/device/3/x.png")
    task = Util.deserialize_json_bytes_to_obj(data, S3ExportTaskDefinition)
    assert (task.input_url, task.bucket, task.key) == (
        f"file://{tmp_path}/x.png",
        "bucket",
        "captures/device/3/x.png",
    )


class EncodedBatch:
    """A batch of encoded results, as the app offers them (results.ResultBatch)."""

    def __init__(self, payloads: list[bytes]) -> None:
        self._payloads = payloads

    def __len__(self) -> int:
        return len(self._payloads)

    def payloads(self) -> list[bytes]:
        return self._payloads


def test_a_batch_through_the_iot_core_sink_makes_the_same_messages_as_one_by_one() -> None:
    payloads = [
        json.dumps({"request_id": f"r{index}", "pad": "x" * (index * 97 % 6000)}).encode()
        for index in range(300)
    ]
    by_batch, one_by_one = FakeIpc(), FakeIpc()
    route, batching = (lambda: ("edgeml/core/results", 1)), (lambda: (50, 60.0))
    batched_sink = AsyncSink(IoTCoreSink(by_batch, route, batching))
    for start in range(0, len(payloads), 32):
        batched_sink.offer(EncodedBatch(payloads[start : start + 32]))
    batched_sink.close()  # publishes what waits
    single = IoTCoreSink(one_by_one, route, batching)
    for payload in payloads:
        single.send(payload)
    single.close()
    assert by_batch.iot_core == one_by_one.iot_core and len(by_batch.iot_core) > 300 // 50
    assert all(len(message) <= 128 * 1024 for _, message, _ in by_batch.iot_core)
    assert [item["request_id"] for _, m, _ in by_batch.iot_core for item in json.loads(m)["results"]] == [
        f"r{index}" for index in range(300)
    ]
    assert batched_sink.sent == 300


def test_a_failed_publish_in_a_batch_costs_only_that_result() -> None:
    class FlakyIpc(FakeIpc):
        def publish_to_topic(self, topic: str, payload: bytes) -> None:
            if payload == b"r1":
                raise ConnectionError("nucleus busy")
            super().publish_to_topic(topic, payload)

    ipc = FlakyIpc()
    sink = AsyncSink(IpcTopicSink(ipc, lambda: "results"))
    sink.offer(EncodedBatch([b"r0", b"r1", b"r2"]))
    sink.close()
    assert ipc.published == [("results", b"r0"), ("results", b"r2")]
    assert (sink.sent, sink.failed) == (2, 1)
