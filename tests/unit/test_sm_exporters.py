"""Exporter pieces: backoff, priority slots, S3 key templates, Kinesis partial failures, the export loop."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import boto3
from botocore.stub import ANY, Stubber
from stream_manager import KinesisConfig, MessageStreamDefinition, Persistence, StrategyOnFull

from edgeml.twin.device.streammanager.exporters.base import ExportAttempt, ExporterSettings, ExportTarget
from edgeml.twin.device.streammanager.exporters.checkpoint import CheckpointStore
from edgeml.twin.device.streammanager.exporters.kinesis import KinesisTarget
from edgeml.twin.device.streammanager.exporters.retry import Backoff, RetryPolicy
from edgeml.twin.device.streammanager.exporters.runner import ExportRunner
from edgeml.twin.device.streammanager.exporters.s3 import expand_key
from edgeml.twin.device.streammanager.exporters.scheduler import PriorityGate
from edgeml.twin.device.streammanager.store.layout import checkpoint_path
from edgeml.twin.device.streammanager.store.records import StoredMessage
from edgeml.twin.device.streammanager.store.segments import MemorySegment
from edgeml.twin.device.streammanager.store.stream import MessageStream


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(RetryPolicy(initial_delay_s=0.1, max_delay_s=0.5, multiplier=2, jitter=0))
    assert [round(backoff.next_delay(), 3) for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next_delay() == 0.1


def test_priority_gate_serves_lower_values_first() -> None:
    async def run() -> list[str]:
        gate = PriorityGate(slots=1)
        order: list[str] = []

        async def upload(name: str, priority: int | None) -> None:
            async with gate.slot(priority):
                order.append(name)
                await asyncio.sleep(0.01)

        async with gate.slot(1):
            tasks = [
                asyncio.create_task(upload(name, priority))
                for name, priority in (("unset", None), ("five", 5), ("one", 1))
            ]
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(run()) == ["one", "five", "unset"]


def test_s3_key_timestamp_placeholders() -> None:
    moment = 1_700_000_000  # 2023-11-14 22:13:20 UTC
    assert expand_key("cams/!{timestamp:yyyy/MM/dd}/a.jpg", moment) == "cams/2023/11/14/a.jpg"
    assert expand_key("x-!{timestamp:HHmmss}", moment) == "x-221320"
    assert expand_key("plain/key", moment) == "plain/key"


def test_kinesis_resends_only_the_records_it_rejected() -> None:
    target = KinesisTarget(KinesisConfig(identifier="k", kinesis_stream_name="results"))
    client = boto3.client("kinesis")
    target._client = client
    messages = [StoredMessage(n, 0, f"m{n}".encode()) for n in range(3)]
    with Stubber(client) as stub:
        stub.add_response(
            "put_records",
            {
                "FailedRecordCount": 1,
                "Records": [
                    {"SequenceNumber": "1", "ShardId": "s"},
                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"},
                    {"SequenceNumber": "2", "ShardId": "s"},
                ],
            },
            {
                "StreamName": "results",
                "Records": [{"Data": m.payload, "PartitionKey": ANY} for m in messages],
            },
        )
        stub.add_response(
            "put_records",
            {"Records": [{"SequenceNumber": "3", "ShardId": "s"}]},
            {"StreamName": "results", "Records": [{"Data": b"m1", "PartitionKey": ANY}]},
        )
        first = target.export(messages)
        assert first.remaining == [messages[1]]
        assert first.error is not None and "ProvisionedThroughputExceeded" in first.error
        assert target.export(first.remaining) == ExportAttempt()
        stub.assert_no_pending_responses()


class FlakyTarget(ExportTarget):
    """Fails the first `failures` calls, then records what it was given."""

    def __init__(self, failures: int) -> None:
        super().__init__(ExporterSettings("flaky", 4, None, None, 0, False))
        self.failures = failures
        self.delivered: list[int] = []
        self.errors_seen = 0

    def export(self, messages: list[StoredMessage]) -> ExportAttempt:
        if self.failures:
            self.failures -= 1
            return ExportAttempt(list(messages), "endpoint unreachable")
        self.delivered += [m.sequence_number for m in messages]
        return ExportAttempt()


def test_runner_retries_keeps_order_and_checkpoints(tmp_path: Path) -> None:
    definition = MessageStreamDefinition(
        name="s", persistence=Persistence.Memory, strategy_on_full=StrategyOnFull.RejectNewData
    )
    target = FlakyTarget(failures=3)
    checkpoints = CheckpointStore(tmp_path)

    async def run() -> list[str | None]:
        stream = MessageStream(definition, [], MemorySegment, time.time)
        for n in range(10):
            stream.append(f"m{n}".encode())
        runner = ExportRunner(stream, target, checkpoints, PriorityGate(), RetryPolicy(0.01, 0.02, jitter=0))
        runner.start()
        errors: list[str | None] = []
        deadline = time.monotonic() + 10
        while runner.status().last_exported_sequence_number < 9 and time.monotonic() < deadline:
            errors.append(runner.status().error_message)
            await asyncio.sleep(0.005)
        errors.append(runner.status().error_message)
        await runner.stop()
        return errors

    errors = asyncio.run(run())
    assert target.delivered == list(range(10))
    assert "endpoint unreachable" in errors
    assert errors[-1] is None
    saved = json.loads(checkpoint_path(tmp_path, "flaky").read_text())
    assert saved["next_sequence_number"] == 10
    assert saved["exported_messages"] == 10
