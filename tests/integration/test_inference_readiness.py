"""Issue 11: the inference app behaves on a stock nucleus as it does in the tests. Real SDK clients
(GreengrassCoreIPCClientV2, StreamManagerClient) against the IPC and Stream Manager twins; the app's
configuration is the recipe's DefaultConfiguration with nothing interpolated."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edgeml_inference.__main__ import open_streams
from edgeml_inference.app import InferenceApp
from edgeml_inference.config import AppConfig
from edgeml_inference.ipc import SdkIpcClient
from inference_kit import holdout, png, write_model_dir
from inference_rig import COMPONENT, THING, Rig, connect_ipc, wait_for

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
    yield from in_process(short_root, monkeypatch)


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
    log = wait_for(lambda: device.rig.ipc.mqtt_log, what="IoT Core publishes")
    assert {entry.topic for entry in log} == {f"edgeml/{THING}/inference/results"}
    assert device.app.result_sinks[1].stats()["failed"] == 0


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
