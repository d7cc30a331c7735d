"""Issue 11: the inference app behaves on a stock nucleus as it does in the tests. Real SDK clients
(GreengrassCoreIPCClientV2, StreamManagerClient) against the IPC and Stream Manager twins; the app's
configuration is the recipe's DefaultConfiguration with nothing interpolated."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from edgeml_inference.__main__ import open_streams
from edgeml_inference.app import InferenceApp
from edgeml_inference.config import AppConfig
from edgeml_inference.ipc import SdkIpcClient
from inference_rig import COMPONENT, THING, Rig, connect_ipc, holdout, png, wait_for, write_model_dir

from edgeml.twin.cloud.motoserver import MotoServer
from edgeml.twin.loopback import free_port


@pytest.fixture()
def short_root() -> Iterator[Path]:
    root = Path(f"/tmp/edgeml-rd-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


class InProcess:
    """The app in this process with the real clients, found as `__main__` finds them (no port variable)."""

    def __init__(self, rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("STREAM_MANAGER_SERVER_PORT", raising=False)
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", rig.streams.auth_token)
        monkeypatch.setenv("AWS_IOT_THING_NAME", THING)
        self.rig = rig
        self.ipc = SdkIpcClient(connect_ipc(rig.ipc, COMPONENT))
        config = AppConfig.from_mapping(self.ipc.get_configuration())
        self.streams = open_streams(config, self.ipc, {})
        assert self.streams is not None
        self.app = InferenceApp(config, self.ipc, self.streams, THING).start()

    def close(self) -> None:
        self.app.stop()
        self.streams.close()
        self.ipc.close()


@contextmanager
def in_process(root: Path, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Iterator[InProcess]:
    rig = Rig(root, **overrides)
    running = InProcess(rig, monkeypatch)
    try:
        yield running
    finally:
        running.close()
        rig.stop()


@pytest.fixture()
def device(short_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    with in_process(short_root, monkeypatch) as running:
        yield running


# item 1: Stream Manager's port as a real component finds it


@pytest.mark.slow
def test_the_app_process_finds_stream_manager_through_its_configuration_over_ipc(short_root: Path) -> None:
    rig = Rig(short_root)
    try:
        rig.spawn()
        x, _ = holdout()
        inputs = rig.work / "input"
        wait_for(lambda: inputs.is_dir() or rig.process.poll() is not None, what="input folder")  # type: ignore[union-attr]
        (inputs / "a.png.tmp").write_bytes(png(x[0]))
        (inputs / "a.png.tmp").rename(inputs / "a.png")
        results = wait_for(lambda: rig.read_stream("EdgemlInferenceResults", 1, 1000), what="a result")
        assert json.loads(results[0])["source"] == "file:a.png"
        assert "(from aws.greengrass.StreamManager configuration)" in rig.log.read_text()
    finally:
        rig.stop()


def test_iot_core_health_records_turned_on_live(short_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    with in_process(short_root, monkeypatch, IoTCoreHealthTopic="") as device:
        device.app.publish_health()
        topic = f"edgeml/{THING}/inference/health"
        device.app.apply_configuration(
            replace(device.app.config, iot_core_health_topic="edgeml/{iot:thingName}/inference/health")
        )
        device.app.publish_health()
        records = wait_for(
            lambda: [e for e in device.rig.ipc.mqtt_log if e.topic == topic], what="a health record"
        )
        assert len([e for e in records if b'"health"' in e.payload]) == 1


@pytest.mark.slow
def test_sigterm_stops_the_app_with_exit_0_and_no_sdk_error_in_its_log(short_root: Path) -> None:
    """The nucleus stops a component with SIGTERM at every deployment that restarts it; its log must not
    fill with an SDK traceback each time (awsiotsdk clientv2 re-raises the executor's RuntimeError for a
    stream closed after close(): `cannot schedule new futures after shutdown`)."""
    rig = Rig(short_root)
    try:
        process = rig.spawn()
        wait_for(lambda: (rig.work / "input").is_dir() or process.poll() is not None, what="app started")
        assert process.poll() is None, rig.log.read_text()
        process.terminate()
        assert process.wait(30) == 0, rig.log.read_text()
        log = rig.log.read_text()
        assert "Traceback" not in log and "cannot schedule new futures" not in log, log
    finally:
        rig.stop()


@pytest.mark.slow
def test_an_unreachable_stream_manager_reports_errored_and_exits_non_zero(short_root: Path) -> None:
    rig = Rig(short_root, stream_manager_port=free_port(), StreamManagerWaitS=1)
    try:
        process = rig.spawn()
        assert process.wait(30) == 4, rig.log.read_text()
        assert rig.ipc.reported_states(COMPONENT) == ["ERRORED"]
        assert "Stream Manager not reachable" in rig.log.read_text()
    finally:
        rig.stop()


# item 2: IoT Core publishes allowed by the recipe's accessControl on a stock nucleus


def test_iot_core_publishes_pass_the_default_access_control_without_interpolation(device: InProcess) -> None:
    x, _ = holdout()
    results = [device.app.submit(png(sample)).result(5) for sample in x[:3]]
    assert all(result.ok for result in results)
    results_topic = f"edgeml/{THING}/inference/results"
    log = wait_for(
        lambda: [entry for entry in device.rig.ipc.mqtt_log if entry.topic == results_topic],
        what="IoT Core publishes",
    )
    assert sum(json.loads(entry.payload)["count"] for entry in log) == 3
    assert device.app.result_sinks[1].stats()["failed"] == 0


def test_health_records_reach_iot_core_on_the_topic_the_fleet_health_rules_read(device: InProcess) -> None:
    """The fleet's health topic rules (edgeml.config.healthrule, deployed by infra/ and run by the cloud
    twin) read `edgeml/<thing>/inference/health` in IoT Core: the app must publish there, through the
    recipe's default accessControl, with nothing interpolated by the nucleus."""
    from edgeml.config.healthrule import HEALTH_TOPIC

    x, _ = holdout()
    assert all(device.app.submit(png(sample)).result(5).ok for sample in x[:4])
    device.app.publish_health()
    topic = HEALTH_TOPIC.format(thing=THING)
    records = wait_for(
        lambda: [json.loads(e.payload) for e in device.rig.ipc.mqtt_log if e.topic == topic],
        what="a health record in IoT Core",
    )
    health = [record for record in records if record["kind"] == "health"]
    assert health and health[-1]["requests"] == 4 and health[-1]["errors"] == 0
    assert all(entry.qos == 1 for entry in device.rig.ipc.mqtt_log if entry.topic == topic)


# item 4: a failed swap is a health event, not ERRORED


def test_a_failed_swap_goes_to_the_health_topic_and_stream_and_is_not_errored(device: InProcess) -> None:
    health_topic = device.rig.listen("edgeml/inference/health")
    broken = write_model_dir(device.rig.model_root / "2.0.0" / "linux-amd64", version="2.0.0")
    (broken / "model.onnx").write_bytes(b"tampered")
    device.rig.ipc.announce_component_update("d-2", {"com.edgeml.model.Digits": "2.0.0"}, wait_s=10)
    events = wait_for(
        lambda: [
            json.loads(message)
            for message in device.rig.read_stream("EdgemlInferenceHealth", 1, 1000)
            if b"model_swap_failed" in message
        ],
        what="model_swap_failed in the health stream",
    )
    assert "sha256" in events[0]["detail"]
    on_topic = wait_for(lambda: [m for m in health_topic if b"model_swap_failed" in m], what="on the topic")
    assert json.loads(on_topic[0])["detail"] == events[0]["detail"]
    x, _ = holdout()
    assert device.app.submit(png(x[0])).result(5).model_version == "1.0.0"
    assert device.rig.ipc.reported_states(COMPONENT) == []


# item 13: done/ and failed/ retention; the second-stage model closed when replaced


def test_done_keeps_the_newest_answered_inputs_and_nothing_it_did_not_write(
    short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process(short_root, monkeypatch, ProcessedKeepCount=2, Mode="interval", IntervalMs=50) as device:
        inputs = device.rig.work / "input"
        done = wait_for(lambda: (inputs / "done").is_dir() and inputs / "done", what="done/")
        (done / "keep-me.txt").write_bytes(b"put here by hand")  # no result beside it: not the app's
        x, _ = holdout()
        for index in range(5):
            (inputs / f"d{index}.png.tmp").write_bytes(png(x[index]))
            (inputs / f"d{index}.png.tmp").rename(inputs / f"d{index}.png")
            wait_for(lambda i=index: (done / f"d{i}.png.json").exists(), what=f"d{index} answered")
        wait_for(lambda: len(list(done.glob("d*.png"))) == 2, what="two inputs left in done/")
        assert sorted(path.name for path in done.iterdir()) == [
            "d3.png", "d3.png.json", "d4.png", "d4.png.json", "keep-me.txt"
        ]


def test_age_retention_removes_only_answered_inputs_older_than_the_limit(tmp_path: Path) -> None:
    from edgeml_inference.retention import prune

    for name, age_h in (("old.png", 30.0), ("new.png", 1.0)):
        (tmp_path / name).write_bytes(b"x")
        result = tmp_path / f"{name}.json"
        result.write_bytes(b"{}")
        stamp = 1_000_000.0 - age_h * 3600
        os.utime(result, (stamp, stamp))
    (tmp_path / "foreign.bin").write_bytes(b"y")
    assert prune(tmp_path, 0, 24 * 3600.0, now=1_000_000.0) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["foreign.bin", "new.png", "new.png.json"]


def test_a_replaced_second_stage_model_is_closed(short_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write_model_dir(short_root / "second-a" / "1.0.0", version="1.0.0")
    second = write_model_dir(short_root / "second-b" / "1.0.0", version="1.0.0")
    with in_process(
        short_root, monkeypatch, EscalationThreshold=1.0, EscalationModelDirectory=str(first)
    ) as device:
        old = device.app.second_model
        assert old is not None and old.directory == first
        configuration = {**device.rig.configuration, "EscalationModelDirectory": str(second)}
        assert device.rig.ipc.push_configuration_update(COMPONENT, configuration).accepted
        wait_for(lambda: device.app.second_model is not old, what="second model replaced")
        assert getattr(old.backend, "session", "open") is None  # the old session released
        x, _ = holdout()
        result = device.app.submit(png(x[0])).result(5)
        assert result.escalation is not None and result.escalation["status"] == "ok"


# item 8: live configuration keys applied, not only accepted


def test_capture_turned_on_live_exports_to_s3(
    aws: MotoServer, short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"edgeml-live-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    with in_process(short_root, monkeypatch, ConfidenceThreshold=1.0, CaptureSampleRate=1.0) as device:
        assert device.app.config.capture_bucket == ""
        configuration = {**device.rig.configuration, "CaptureBucket": bucket}
        assert device.rig.ipc.push_configuration_update(COMPONENT, configuration).accepted
        wait_for(lambda: device.app.config.capture_bucket == bucket, what="CaptureBucket applied")
        x, _ = holdout()
        result = device.app.submit(png(x[0])).result(5)

        def keys() -> list[str]:
            listing = boto3.client("s3").list_objects_v2(Bucket=bucket)
            return [item["Key"] for item in listing.get("Contents", [])]

        exported = wait_for(keys, what="the capture in S3")
        assert exported[0].endswith(f"{result.request_id}.png")


def test_stream_keys_queue_size_and_full_wait_apply_live(device: InProcess) -> None:
    configuration = {
        **device.rig.configuration,
        "ResultStream": "EdgemlResultsV2",
        "ResultKinesisStream": "edgeml-results-v2",
        "SinkQueueSize": 77,
        "SinkFullWaitMs": 250,
    }
    assert device.rig.ipc.push_configuration_update(COMPONENT, configuration).accepted
    wait_for(  # applied: the configuration is in and the stream sinks were replaced
        lambda: any(sink.name == "stream:EdgemlResultsV2" for sink in device.app.result_sinks), what="applied"
    )
    x, _ = holdout()
    result = device.app.submit(png(x[0])).result(5)
    messages = wait_for(lambda: device.rig.read_stream("EdgemlResultsV2", 1, 1000), what="the new stream")
    assert json.loads(messages[0])["request_id"] == result.request_id
    description = device.streams.describe_message_stream("EdgemlResultsV2")
    [kinesis] = description.definition.export_definition.kinesis
    assert kinesis.kinesis_stream_name == "edgeml-results-v2"
    assert {sink.max_queue for sink in device.app.result_sinks} == {77}
    assert {sink.full_wait_s for sink in device.app.result_sinks} == {0.25}  # the new stream sink's too


def test_intra_op_threads_reopens_the_model_live(device: InProcess) -> None:
    def threads() -> int:
        session = device.app.models.current.backend.session  # type: ignore[attr-defined]
        return int(session.get_session_options().intra_op_num_threads)

    assert threads() == 1
    configuration = {**device.rig.configuration, "IntraOpThreads": 2}
    assert device.rig.ipc.push_configuration_update(COMPONENT, configuration).accepted
    wait_for(lambda: threads() == 2, what="the model reopened with 2 threads")
    x, _ = holdout()
    assert device.app.submit(png(x[0])).result(5).ok


# item 9: captures deleted once Stream Manager reports them in S3; the budget is a ceiling


def test_exported_captures_are_deleted_so_capture_goes_on_past_the_budget(
    aws: MotoServer, short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"edgeml-cap-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    x, _ = holdout()
    budget = 2 * len(png(x[0]))  # room for two captures waiting for export
    with in_process(
        short_root,
        monkeypatch,
        ConfidenceThreshold=1.0,
        CaptureSampleRate=1.0,
        CaptureBucket=bucket,
        CaptureDiskBudgetBytes=budget,
    ) as device:

        def keys() -> list[str]:
            listing = boto3.client("s3").list_objects_v2(Bucket=bucket)
            return [item["Key"] for item in listing.get("Contents", [])]

        folder = device.rig.work / "capture"
        for index in range(5):
            device.app.submit(png(x[index])).result(5)
            wait_for(lambda n=index + 1: len(keys()) >= n, what=f"capture {index + 1} in S3")
            wait_for(lambda: not any(folder.glob("*.png")), what="the exported file deleted")
        assert device.app.capture.over_budget == 0
        assert device.app.capture.captured == 5 and device.app.capture.exported_removed == 5


# item 12: results to IoT Core in batches, within the nucleus spool and IoT Core's publish rate


def test_iot_core_gets_results_in_batches_by_count_and_time(
    short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process(short_root, monkeypatch, IoTCoreBatchSize=10, IoTCoreBatchMs=300) as device:
        x, _ = holdout()
        results = [device.app.submit(png(x[i % len(x)])).result(5) for i in range(25)]
        log = wait_for(lambda: len(device.rig.ipc.mqtt_log) >= 3 and device.rig.ipc.mqtt_log, what="batches")
        batches = [json.loads(entry.payload) for entry in log]
        assert [batch["count"] for batch in batches] == [10, 10, 5]  # the last one sent by time
        delivered = [item["request_id"] for batch in batches for item in batch["results"]]
        assert delivered == [result.request_id for result in results]
        assert {entry.qos for entry in log} == {1}


class InstantCloud:
    """IoT Core at the boto3 boundary: records what the nucleus forwards."""

    def __init__(self) -> None:
        self.published: list[bytes] = []

    def publish(self, topic: str, qos: int, payload: bytes) -> None:
        self.published.append(payload)


def test_a_burst_of_results_reaches_iot_core_without_throttling(
    short_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with in_process(short_root, monkeypatch, MaxBatch=32) as device:
        bridge = device.rig.ipc.services.iot_core
        cloud = InstantCloud()
        bridge.forward, bridge._client_factory = True, lambda _url: cloud
        x, _ = holdout()
        futures = [device.app.submit(png(x[i % len(x)])) for i in range(1000)]
        ids = [future.result(10).request_id for future in futures]
        wait_for(lambda: sum(json.loads(p)["count"] for p in cloud.published) == 1000, 20, "all forwarded")
        assert bridge.throttled == 0 and bridge.refused == 0
        assert [item["request_id"] for p in cloud.published for item in json.loads(p)["results"]] == ids
        assert len(cloud.published) <= 1000 / 50 + 2  # IoTCoreBatchSize 50 (recipe default)
