"""Exports to the cloud twin (loopback moto) through plain boto3: Kinesis, S3 tasks, outages, restarts."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from stream_manager import (
    ExportDefinition,
    KinesisConfig,
    MessageStreamDefinition,
    Persistence,
    ReadMessagesOptions,
    S3ExportTaskDefinition,
    S3ExportTaskExecutorConfig,
    StatusConfig,
    StatusLevel,
    StatusMessage,
    StrategyOnFull,
    StreamManagerClient,
    Util,
)
from stream_manager.data import Status

from edgeml.twin.cloud.motoserver import MotoServer, pointed_at
from edgeml.twin.cloud.readback import kinesis_payloads
from edgeml.twin.device.streammanager import RetryPolicy, StreamManagerServer
from edgeml.twin.device.streammanager.process import StreamManagerProcess
from edgeml.twin.loopback import free_port

FAST_RETRY = RetryPolicy(initial_delay_s=0.05, max_delay_s=0.3)


@contextlib.contextmanager
def twin(store: Path) -> Iterator[tuple[StreamManagerServer, StreamManagerClient]]:
    with StreamManagerServer(store, retry=FAST_RETRY) as server, pointed_at(server.client_env()):
        client = StreamManagerClient(request_timeout=10)
        try:
            yield server, client
        finally:
            client.close()


def kinesis_stream(name_prefix: str) -> str:
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


def export_status(client: StreamManagerClient, stream: str, identifier: str) -> Any:
    statuses = client.describe_message_stream(stream).export_statuses or []
    return next(status for status in statuses if status.export_config_identifier == identifier)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kinesis_export(identifier: str, stream: str, **kwargs: Any) -> ExportDefinition:
    return ExportDefinition(
        kinesis=[KinesisConfig(identifier=identifier, kinesis_stream_name=stream, **kwargs)]
    )


def test_kinesis_export_in_batches_and_in_order(aws: MotoServer, tmp_path: Path) -> None:
    target = kinesis_stream("results")
    with twin(tmp_path / "store") as (_, client):
        client.create_message_stream(
            MessageStreamDefinition(
                name="results",
                strategy_on_full=StrategyOnFull.OverwriteOldestData,
                export_definition=kinesis_export("to-kinesis", target, batch_size=10),
            )
        )
        payloads = [f"result {i}".encode() for i in range(25)]
        for payload in payloads:
            client.append_message("results", payload)
        wait_until(
            lambda: export_status(client, "results", "to-kinesis").last_exported_sequence_number == 24,
            "export",
        )
        status = export_status(client, "results", "to-kinesis")
        assert status.exported_messages_count == 25
        assert status.exported_bytes_from_stream == sum(len(p) for p in payloads)
        assert status.error_message is None
        assert status.last_export_time == pytest.approx(time.time() * 1000, abs=30_000)
    assert kinesis_payloads(target) == payloads


def test_s3_export_tasks_upload_files_and_report_status(aws: MotoServer, tmp_path: Path) -> None:
    bucket = f"captures-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    files = []
    for i in range(2):
        path = tmp_path / f"capture {i}.jpg"
        path.write_bytes(f"image bytes {i}".encode() * 100)
        files.append(path)
    with twin(tmp_path / "store") as (_, client):
        client.create_message_stream(
            MessageStreamDefinition(
                name="status",
                persistence=Persistence.Memory,
                strategy_on_full=StrategyOnFull.OverwriteOldestData,
            )
        )
        client.create_message_stream(
            MessageStreamDefinition(
                name="captures",
                strategy_on_full=StrategyOnFull.RejectNewData,
                export_definition=ExportDefinition(
                    s3_task_executor=[
                        S3ExportTaskExecutorConfig(
                            identifier="to-s3",
                            status_config=StatusConfig(
                                status_level=StatusLevel.INFO, status_stream_name="status"
                            ),
                        )
                    ]
                ),
            )
        )
        tasks = [
            S3ExportTaskDefinition(input_url=path.as_uri(), bucket=bucket, key=f"device-1/{i}.jpg")
            for i, path in enumerate(files)
        ]
        tasks.append(
            S3ExportTaskDefinition(input_url=(tmp_path / "gone.jpg").as_uri(), bucket=bucket, key="gone")
        )
        for task in tasks:
            client.append_message("captures", Util.validate_and_serialize_to_json_bytes(task))
        wait_until(
            lambda: export_status(client, "captures", "to-s3").last_exported_sequence_number == 2, "export"
        )

        messages = client.read_messages(
            "status", ReadMessagesOptions(min_message_count=1, max_message_count=100)
        )
        statuses = [Util.deserialize_json_bytes_to_obj(m.payload, StatusMessage) for m in messages]
    final = {(s.status_context.sequence_number, s.status) for s in statuses if s.status != Status.InProgress}
    assert final == {(0, Status.Success), (1, Status.Success), (2, Status.Failure)}
    assert all(s.status_context.export_identifier == "to-s3" for s in statuses)
    assert {
        s.status_context.s3_export_task_definition.key for s in statuses if s.status == Status.Success
    } == {
        "device-1/0.jpg",
        "device-1/1.jpg",
    }
    s3 = boto3.client("s3")
    for i, path in enumerate(files):
        assert s3.get_object(Bucket=bucket, Key=f"device-1/{i}.jpg")["Body"].read() == path.read_bytes()


def test_cloud_outage_then_back_nothing_lost_order_kept(tmp_path: Path) -> None:
    port = free_port()
    cloud = MotoServer(port=port).start()
    try:
        with pointed_at(cloud.env()):
            target = kinesis_stream("outage")
            with twin(tmp_path / "store") as (_, client):
                client.create_message_stream(
                    MessageStreamDefinition(
                        name="telemetry",
                        strategy_on_full=StrategyOnFull.RejectNewData,
                        export_definition=kinesis_export("k", target, batch_size=5),
                    )
                )
                payloads = [f"reading {i}".encode() for i in range(40)]
                for payload in payloads[:10]:
                    client.append_message("telemetry", payload)
                wait_until(
                    lambda: export_status(client, "telemetry", "k").last_exported_sequence_number == 9,
                    "export",
                )

                cloud.stop()
                for payload in payloads[10:]:
                    client.append_message("telemetry", payload)
                wait_until(
                    lambda: export_status(client, "telemetry", "k").error_message is not None, "an error"
                )
                assert export_status(client, "telemetry", "k").last_exported_sequence_number == 9

                cloud = MotoServer(port=port).start()
                wait_until(
                    lambda: export_status(client, "telemetry", "k").last_exported_sequence_number == 39,
                    "catch-up",
                )
                assert export_status(client, "telemetry", "k").error_message is None
            delivered = kinesis_payloads(target)
    finally:
        cloud.stop()
    first_seen = list(dict.fromkeys(delivered))
    assert first_seen == payloads


def test_export_resumes_from_checkpoint_after_restart(aws: MotoServer, tmp_path: Path) -> None:
    main, late, off = kinesis_stream("main"), kinesis_stream("late"), kinesis_stream("off")
    export = ExportDefinition(
        kinesis=[
            KinesisConfig(identifier="main", kinesis_stream_name=main, batch_size=4),
            KinesisConfig(identifier="late", kinesis_stream_name=late, start_sequence_number=6),
            KinesisConfig(identifier="off", kinesis_stream_name=off, disabled=True),
        ]
    )
    store = tmp_path / "store"
    with twin(store) as (_, client):
        client.create_message_stream(
            MessageStreamDefinition(
                name="events", strategy_on_full=StrategyOnFull.RejectNewData, export_definition=export
            )
        )
        for i in range(10):
            client.append_message("events", f"event {i}".encode())
        wait_until(
            lambda: export_status(client, "events", "main").last_exported_sequence_number == 9, "batches"
        )
        wait_until(lambda: export_status(client, "events", "late").last_exported_sequence_number == 9, "late")
    with twin(store) as (_, client):
        for i in range(10, 12):
            client.append_message("events", f"event {i}".encode())
        wait_until(
            lambda: export_status(client, "events", "main").last_exported_sequence_number == 11, "resume"
        )
        wait_until(
            lambda: export_status(client, "events", "late").last_exported_sequence_number == 11, "resume"
        )
        assert export_status(client, "events", "off").last_exported_sequence_number == -1
    assert kinesis_payloads(main) == [f"event {i}".encode() for i in range(12)]
    assert kinesis_payloads(late) == [f"event {i}".encode() for i in range(6, 12)]
    assert kinesis_payloads(off) == []


def test_batch_size_and_batch_interval(aws: MotoServer, tmp_path: Path) -> None:
    target = kinesis_stream("batched")
    now = [2_000_000.0]
    server = StreamManagerServer(tmp_path / "store", retry=FAST_RETRY, clock=lambda: now[0])
    with server, pointed_at(server.client_env()):
        client = StreamManagerClient(request_timeout=10)
        try:
            client.create_message_stream(
                MessageStreamDefinition(
                    name="batched",
                    strategy_on_full=StrategyOnFull.RejectNewData,
                    export_definition=kinesis_export(
                        "k", target, batch_size=10, batch_interval_millis=60_000
                    ),
                )
            )
            for i in range(25):
                client.append_message("batched", f"m{i}".encode())
            wait_until(
                lambda: export_status(client, "batched", "k").last_exported_sequence_number == 19, "2 batches"
            )
            time.sleep(1.5)  # the last 5 wait for batch_size or for the interval to pass
            assert export_status(client, "batched", "k").last_exported_sequence_number == 19
            now[0] += 61
            wait_until(
                lambda: export_status(client, "batched", "k").last_exported_sequence_number == 24, "interval"
            )
        finally:
            client.close()
    assert kinesis_payloads(target) == [f"m{i}".encode() for i in range(25)]


def test_kill_9_while_exporting_then_restart_delivers_everything_in_order(
    aws: MotoServer, tmp_path: Path
) -> None:
    target = kinesis_stream("crash")
    token = "export-crash-token"
    server = StreamManagerProcess(tmp_path / "store", token, env=aws.env()).start()
    try:
        with pointed_at(server.client_env()):
            client = StreamManagerClient(request_timeout=5)
            client.create_message_stream(
                MessageStreamDefinition(
                    name="crashy",
                    strategy_on_full=StrategyOnFull.RejectNewData,
                    export_definition=kinesis_export("k", target, batch_size=3),
                )
            )
            payloads = [f"event {i}".encode() for i in range(60)]
            for payload in payloads[:50]:
                client.append_message("crashy", payload)
            server.kill()
            with contextlib.suppress(Exception):
                client.close()

        server.start()
        with pointed_at(server.client_env()):
            client = StreamManagerClient(request_timeout=5)
            try:
                for payload in payloads[50:]:
                    client.append_message("crashy", payload)
                wait_until(
                    lambda: export_status(client, "crashy", "k").last_exported_sequence_number == 59,
                    "catch-up",
                )
            finally:
                client.close()
    finally:
        server.stop()
    delivered = kinesis_payloads(target)
    assert list(dict.fromkeys(delivered)) == payloads
