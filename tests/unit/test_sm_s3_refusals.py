"""Which failed uploads are final (reported as Failure) and which are retried; an exporter survives errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from stream_manager import MessageStreamDefinition, Persistence, StrategyOnFull

from edgeml.twin.device.streammanager.exporters.base import ExportAttempt, ExporterSettings, ExportTarget
from edgeml.twin.device.streammanager.exporters.checkpoint import CheckpointStore
from edgeml.twin.device.streammanager.exporters.refusals import service_refusal
from edgeml.twin.device.streammanager.exporters.retry import RetryPolicy
from edgeml.twin.device.streammanager.exporters.runner import ExportRunner
from edgeml.twin.device.streammanager.exporters.scheduler import PriorityGate
from edgeml.twin.device.streammanager.store.records import StoredMessage
from edgeml.twin.device.streammanager.store.segments import MemorySegment
from edgeml.twin.device.streammanager.store.stream import MessageStream


def upload_error(tmp_path: Path, code: str, status: int, message: str = "refused") -> BaseException:
    """What the real boto3 `upload_file` raises when S3 answers PutObject with this error."""
    source = tmp_path / "file.bin"
    source.write_bytes(b"x" * 100)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    with Stubber(s3) as stub:
        stub.add_client_error(
            "put_object", service_error_code=code, service_message=message, http_status_code=status
        )
        with pytest.raises(Exception) as raised:
            s3.upload_file(str(source), "bucket", "key", Config=TransferConfig(use_threads=False))
    return raised.value


@pytest.mark.parametrize(
    ("code", "status"),
    [("NoSuchBucket", 404), ("AccessDenied", 403), ("InvalidAccessKeyId", 403), ("InvalidBucketName", 400)],
)
def test_service_refusals_are_final(tmp_path: Path, code: str, status: int) -> None:
    error = upload_error(tmp_path, code, status, "no way")
    assert type(error).__name__ == "S3UploadFailedError"  # boto3 wraps the ClientError
    assert service_refusal(error) == f"{code}: no way (HTTP {status})"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InternalError", 500),
        ("SlowDown", 503),
        ("ServiceUnavailable", 503),
        ("RequestTimeout", 400),
        ("TooManyRequests", 429),
        ("BadGateway", 502),
    ],
)
def test_transient_and_throttling_errors_are_retried(tmp_path: Path, code: str, status: int) -> None:
    assert service_refusal(upload_error(tmp_path, code, status)) is None


def test_no_response_at_all_is_retried() -> None:
    assert service_refusal(EndpointConnectionError(endpoint_url="http://127.0.0.1:9")) is None
    assert service_refusal(OSError("disk went away")) is None


class RaisesOnceTarget(ExportTarget):
    """Raises an error no exporter expects on its first call, then records what it was given."""

    def __init__(self) -> None:
        super().__init__(ExporterSettings("raises-once", 10, None, None, 0, False))
        self.calls = 0
        self.delivered: list[int] = []

    def export(self, messages: list[StoredMessage]) -> ExportAttempt:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("something nobody caught")
        self.delivered += [m.sequence_number for m in messages]
        return ExportAttempt()


def test_an_unexpected_error_is_a_failed_attempt_not_the_end_of_the_exporter(tmp_path: Path) -> None:
    definition = MessageStreamDefinition(
        name="s", persistence=Persistence.Memory, strategy_on_full=StrategyOnFull.RejectNewData
    )
    target = RaisesOnceTarget()

    async def run() -> list[Any]:
        stream = MessageStream(definition, [], MemorySegment, time.time)
        for n in range(3):
            stream.append(f"m{n}".encode())
        runner = ExportRunner(
            stream, target, CheckpointStore(tmp_path), PriorityGate(), RetryPolicy(0.01, 0.02, jitter=0)
        )
        runner.start()
        errors = []
        deadline = time.monotonic() + 10
        while runner.status().last_exported_sequence_number < 2 and time.monotonic() < deadline:
            errors.append(runner.status().error_message)
            await asyncio.sleep(0.002)
        await runner.stop()  # raised the exporter's error before
        return errors

    errors = asyncio.run(run())
    assert target.delivered == [0, 1, 2]
    assert "RuntimeError: something nobody caught" in errors
