"""S3 export tasks that S3 refuses (NoSuchBucket, AccessDenied) against the cloud twin (loopback moto).

The AWS docs (Greengrass v2 developer guide, "Monitor export tasks") list `Failure` as a completed state:
"Stream manager encountered an error, for example, the specified bucket does not exist. After resolving
the issue, you can append the export task to the stream again." So such a task is reported as Failure
on the status stream, with a message, and the exporter goes on with the next task.
"""

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
    MessageStreamDefinition,
    Persistence,
    ReadMessagesOptions,
    ResourceNotFoundException,
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
from edgeml.twin.device.streammanager import RetryPolicy, StreamManagerServer
from edgeml.twin.loopback import free_port

FAST_RETRY = RetryPolicy(initial_delay_s=0.05, max_delay_s=0.3)
OTHER_ACCOUNT = "111122223333"


@contextlib.contextmanager
def twin(store: Path) -> Iterator[StreamManagerClient]:
    with StreamManagerServer(store, retry=FAST_RETRY) as server, pointed_at(server.client_env()):
        client = StreamManagerClient(request_timeout=10)
        try:
            yield client
        finally:
            client.close()


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def bucket_of_another_account(name: str) -> None:
    """Creates a bucket owned by OTHER_ACCOUNT (moto takes the account from this header)."""
    s3 = boto3.client("s3")

    def as_other_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = OTHER_ACCOUNT

    s3.meta.events.register("before-sign.s3.CreateBucket", as_other_account)
    s3.create_bucket(Bucket=name)


def s3_task_stream(client: StreamManagerClient, name: str, status_stream: str) -> None:
    client.create_message_stream(
        MessageStreamDefinition(
            name=status_stream,
            persistence=Persistence.Memory,
            strategy_on_full=StrategyOnFull.OverwriteOldestData,
        )
    )
    client.create_message_stream(
        MessageStreamDefinition(
            name=name,
            strategy_on_full=StrategyOnFull.RejectNewData,
            export_definition=ExportDefinition(
                s3_task_executor=[
                    S3ExportTaskExecutorConfig(
                        identifier="to-s3",
                        status_config=StatusConfig(
                            status_level=StatusLevel.INFO, status_stream_name=status_stream
                        ),
                    )
                ]
            ),
        )
    )


def statuses(client: StreamManagerClient, status_stream: str) -> list[Any]:
    try:
        messages = client.read_messages(
            status_stream, ReadMessagesOptions(min_message_count=1, max_message_count=1000)
        )
    except Exception:
        return []
    return [Util.deserialize_json_bytes_to_obj(m.payload, StatusMessage) for m in messages]


def final_statuses(client: StreamManagerClient, status_stream: str) -> dict[int, Any]:
    return {
        s.status_context.sequence_number: s
        for s in statuses(client, status_stream)
        if s.status in (Status.Success, Status.Failure, Status.Canceled)
    }


def test_rejected_uploads_are_reported_as_failure_and_the_next_task_still_uploads(
    aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS", "false")  # read by moto on every request
    good, foreign = f"good-{uuid.uuid4().hex[:8]}", f"foreign-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=good)
    bucket_of_another_account(foreign)
    capture = tmp_path / "capture.jpg"
    capture.write_bytes(b"jpeg bytes " * 200)
    tasks = [
        S3ExportTaskDefinition(input_url=capture.as_uri(), bucket=f"missing-{uuid.uuid4().hex[:8]}", key="a"),
        S3ExportTaskDefinition(input_url=capture.as_uri(), bucket=foreign, key="b"),
        S3ExportTaskDefinition(input_url=capture.as_uri(), bucket=good, key="c"),
    ]
    with twin(tmp_path / "store") as client:
        s3_task_stream(client, "captures", "status")
        for task in tasks:
            client.append_message("captures", Util.validate_and_serialize_to_json_bytes(task))
        wait_until(lambda: len(final_statuses(client, "status")) == 3, "a final status for every task")
        final = final_statuses(client, "status")

        # the exporter is still alive: a task appended afterwards is uploaded too
        late = S3ExportTaskDefinition(input_url=capture.as_uri(), bucket=good, key="late")
        client.append_message("captures", Util.validate_and_serialize_to_json_bytes(late))
        wait_until(lambda: 3 in final_statuses(client, "status"), "the late task")
        late_status = final_statuses(client, "status")[3]

        # and the stream deletes cleanly (it failed once with UnknownFailureException before)
        client.delete_message_stream("captures")
        with pytest.raises(ResourceNotFoundException):
            client.describe_message_stream("captures")
        all_statuses = statuses(client, "status")

    assert [final[n].status for n in range(3)] == [Status.Failure, Status.Failure, Status.Success]
    assert "NoSuchBucket" in final[0].message and tasks[0].bucket in final[0].message
    assert "AccessDenied" in final[1].message and foreign in final[1].message
    assert all(final[n].status_level == StatusLevel.ERROR for n in (0, 1))
    assert [final[n].status_context.s3_export_task_definition.bucket for n in range(3)] == [
        t.bucket for t in tasks
    ]
    assert late_status.status == Status.Success
    # a service refusal is final: no Warning (retry) is reported for those tasks
    assert not [s for s in all_statuses if s.status == Status.Warning]
    s3 = boto3.client("s3")
    for key in ("c", "late"):
        assert s3.get_object(Bucket=good, Key=key)["Body"].read() == capture.read_bytes()


def test_s3_unreachable_is_a_warning_and_retried_until_the_upload_works(tmp_path: Path) -> None:
    port = free_port()
    cloud = MotoServer(port=port).start()
    capture = tmp_path / "capture.jpg"
    capture.write_bytes(b"jpeg bytes " * 200)
    bucket = f"later-{uuid.uuid4().hex[:8]}"
    try:
        with pointed_at(cloud.env()):
            boto3.client("s3").create_bucket(Bucket=bucket)
            cloud.stop()  # moto keeps its state in the process: the bucket is there when it is back
            with twin(tmp_path / "store") as client:
                s3_task_stream(client, "captures", "status")
                task = S3ExportTaskDefinition(input_url=capture.as_uri(), bucket=bucket, key="k")
                client.append_message("captures", Util.validate_and_serialize_to_json_bytes(task))
                wait_until(
                    lambda: any(s.status == Status.Warning for s in statuses(client, "status")),
                    "a warning while S3 is unreachable",
                )
                assert not final_statuses(client, "status")
                cloud = MotoServer(port=port).start()
                wait_until(lambda: 0 in final_statuses(client, "status"), "the upload once S3 is back")
                assert final_statuses(client, "status")[0].status == Status.Success
                body = boto3.client("s3").get_object(Bucket=bucket, Key="k")["Body"].read()
    finally:
        cloud.stop()
    assert body == capture.read_bytes()
