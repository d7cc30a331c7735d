"""`python -m edgeml_inference` as a process against the device twins, with the unmodified SDK clients.

The app reads its configuration over IPC (IPC twin), takes inputs from a directory, the loopback HTTP endpoint
and a local topic, and writes results to a Stream Manager stream (Stream Manager twin) that exports to Kinesis
on the cloud twin (moto). The test reads the results back from the stream and from Kinesis, sees the IoT Core
publishes in the twin's MQTT log, rejects an invalid configuration update, applies a valid one live and hot
swaps the model after a component update.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from stream_manager import ReadMessagesOptions, StreamManagerClient

from edgeml.twin.cloud.motoserver import MotoServer
from edgeml.twin.cloud.readback import kinesis_payloads
from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.device.streammanager.server import StreamManagerServer
from edgeml.twin.loopback import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit"))
from device_venv_harness import healthy  # noqa: E402
from device_venv_harness import post as harness_post  # noqa: E402
from inference_kit import holdout, png, write_model_dir  # noqa: E402

COMPONENT = "com.edgeml.Inference"
THING = "edgeml-it-core"
pytestmark = pytest.mark.slow


def recipe_configuration() -> dict[str, Any]:
    recipe = yaml.safe_load((REPO / "recipes" / f"{COMPONENT}.yaml").read_text())
    text = json.dumps(recipe["ComponentConfiguration"]["DefaultConfiguration"]).replace(
        "{iot:thingName}", THING
    )
    configuration: dict[str, Any] = json.loads(text)
    return configuration


def post(port: int, body: bytes) -> tuple[int, dict[str, Any]]:
    return harness_post(port, body, timeout_s=10)


class Device:
    """The twins and the app process of one simulated core device."""

    def __init__(self, root: Path, kinesis_stream: str, bucket: str) -> None:
        self.root = root
        self.model_root = root / "artifacts" / "com.edgeml.model.Digits"
        write_model_dir(self.model_root / "1.0.0" / "linux-amd64", version="1.0.0")
        self.work = root / "work"
        self.work.mkdir()
        self.port = free_port()
        self.configuration = recipe_configuration()
        self.configuration.update(
            {
                "ModelDirectory": str(self.model_root),
                "InputDirectory": str(self.work / "input"),
                "HttpPort": self.port,
                "ResultKinesisStream": kinesis_stream,
                "StreamMaxBytes": 8 * 1024 * 1024,
                "HealthIntervalS": 0.5,
                "ModelPollS": 0,
                "MaxWaitMs": 2,
                # every input counts as low confidence and is captured, then exported to S3
                "ConfidenceThreshold": 1.0,
                "CaptureSampleRate": 1.0,
                "CaptureBucket": bucket,
            }
        )
        self.ipc = IpcServer().start()
        self.ipc.register_component(COMPONENT, self.configuration)
        self.streams = StreamManagerServer(root / "streammanager").start()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "app.log"
        self.stopped = False

    def start_app(self) -> None:
        env = {
            **os.environ,
            **self.ipc.component_env(COMPONENT),
            **self.streams.client_env(),
            "AWS_IOT_THING_NAME": THING,
            "PYTHONPATH": str(REPO / "components" / COMPONENT),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edgeml_inference"], cwd=self.work, env=env, stdout=log, stderr=log
            )
        process = self.process
        wait_for(lambda: healthy(self.port, timeout_s=1) or process.poll() is not None, "app")
        assert self.process.poll() is None, self.log.read_text()

    def stop(self) -> int | None:
        """SIGTERM (as the nucleus stops a component), then the twins; returns the app's exit code."""
        code = None
        if self.stopped:
            return None
        self.stopped = True
        if self.process is not None:
            self.process.terminate()
            try:
                code = self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.streams.stop()
        self.ipc.stop()
        return code

    def read_stream(self, name: str, count: int, up_to: int | None = None) -> list[dict[str, Any]]:
        """At least `count` messages from the start (waiting up to 10 s), at most `up_to` (or `count`)."""
        with StreamManagerClient(port=self.streams.port) as client:
            messages = client.read_messages(
                name,
                ReadMessagesOptions(
                    desired_start_sequence_number=0,
                    min_message_count=count,
                    max_message_count=up_to or count,
                    read_timeout_millis=10000,
                ),
            )
        return [json.loads(message.payload) for message in messages]


@pytest.fixture()
def device(aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Device]:
    name = f"edgeml-results-{uuid.uuid4().hex[:8]}"
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    bucket = f"edgeml-captures-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    short = Path(f"/tmp/edgeml-it-{uuid.uuid4().hex[:8]}")  # short paths for the Unix socket and store
    short.mkdir()
    running = Device(short, name, bucket)
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", running.streams.auth_token)
    try:
        running.start_app()
        yield running
    finally:
        running.stop()
        shutil.rmtree(short, ignore_errors=True)
        del tmp_path


def test_results_reach_the_stream_kinesis_and_iot_core(device: Device) -> None:
    x, _ = holdout()
    inputs = device.work / "input"
    for index in range(3):
        (inputs / f"digit{index}.png.tmp").write_bytes(png(x[index]))
        os.replace(inputs / f"digit{index}.png.tmp", inputs / f"digit{index}.png")
    (inputs / "broken.png").write_bytes(b"\x89PNG but not really")
    status, body = post(device.port, png(x[10]))
    assert status == 200 and body["status"] == "ok"
    status, body = post(device.port, b"garbage")
    assert status == 422 and body["reason"] == "corrupt_image"
    device.ipc.publish_local("edgeml/inference/input", png(x[11]))  # binary message: image bytes
    tensor = {"shape": [1, 8, 8], "data": x[12].reshape(-1).tolist()}
    device.ipc.publish_local("edgeml/inference/input", tensor)  # JSON message: a tensor

    results = wait_for(
        lambda: (
            len(device.read_stream("EdgemlInferenceResults", 8)) >= 8
            and device.read_stream("EdgemlInferenceResults", 8)
        ),
        "8 results in the stream",
    )
    sources = sorted(result["source"] for result in results)
    assert sources.count("http") == 2 and sources.count("topic:edgeml/inference/input") == 2
    assert {s for s in sources if s.startswith("file:")} == {f"file:digit{i}.png" for i in range(3)} | {
        "file:broken.png"
    }
    assert wait_for(lambda: (inputs / "done" / "digit0.png").exists(), "file moved to done/")
    assert (inputs / "failed" / "broken.png").exists()

    name = device.configuration["ResultKinesisStream"]
    exported = wait_for(lambda: len(kinesis_payloads(name)) >= 8 and kinesis_payloads(name), "Kinesis export")
    assert {json.loads(payload)["request_id"] for payload in exported} >= {r["request_id"] for r in results}

    results_topic = f"edgeml/{THING}/inference/results"
    wait_for(lambda: any(e.topic == results_topic for e in device.ipc.mqtt_log), "IoT Core publishes")
    # results and health records, each under the device's own topic (the fleet's IoT policy allows no other)
    topics = {entry.topic for entry in device.ipc.mqtt_log}
    assert topics <= {results_topic, f"edgeml/{THING}/inference/health"}
    assert {entry.qos for entry in device.ipc.mqtt_log} == {1}

    health = wait_for(
        lambda: [m for m in device.read_stream("EdgemlInferenceHealth", 1) if m.get("kind") == "health"],
        "health in its stream",
    )
    assert health[0]["model"]["name"] == "digits"
    bucket = device.configuration["CaptureBucket"]

    def captured() -> list[str]:
        listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"captures/{THING}/")
        return [item["Key"] for item in listing.get("Contents", [])]

    ok = [result for result in results if result["status"] == "ok"]
    keys = wait_for(lambda: len(captured()) >= len(ok) and captured(), "captured inputs exported to S3")
    # keys end in "<request id>.<ext>": .png for images, .json for the tensor
    assert {key.rsplit("-", 1)[-1].split(".")[0] for key in keys} >= {
        r["request_id"].rsplit("-", 1)[-1] for r in ok
    }
    assert {key.rsplit(".", 1)[-1] for key in keys} == {"png", "json"}
    assert (device.work / "capture").is_dir()  # CaptureDirectory "" = capture/ in the work folder
    assert device.stop() == 0  # SIGTERM: drains, flushes its sinks and exits cleanly


def test_live_configuration_validation_and_hot_swap(device: Device) -> None:
    x, _ = holdout()
    bad = {**device.configuration, "MaxBatch": 0}
    report = device.ipc.push_configuration_update(COMPONENT, bad)
    assert not report.accepted and "MaxBatch" in (report.message or "")
    good = {**device.configuration, "TopK": 1}
    assert device.ipc.push_configuration_update(COMPONENT, good).accepted
    wait_for(lambda: len(post(device.port, png(x[0]))[1].get("top_k", [])) == 1, "TopK 1 applied live")

    write_model_dir(device.model_root / "1.1.0" / "linux-amd64", version="1.1.0")
    deferrals = device.ipc.announce_component_update(
        "deployment-1", {"com.edgeml.model.Digits": "1.1.0"}, wait_s=10
    )
    assert deferrals == []
    wait_for(lambda: post(device.port, png(x[1]))[1].get("model_version") == "1.1.0", "new model serving")
    assert device.ipc.reported_states(COMPONENT) == []

    broken = write_model_dir(device.model_root / "1.2.0" / "linux-amd64", version="1.2.0")
    (broken / "model.onnx").write_bytes(b"tampered")
    device.ipc.announce_component_update("deployment-2", {"com.edgeml.model.Digits": "1.2.0"}, wait_s=10)
    failed = wait_for(
        lambda: [
            m
            for m in device.read_stream("EdgemlInferenceHealth", 1, 10_000)
            if m.get("event") == "model_swap_failed"
        ],
        "model_swap_failed in the health stream",
    )
    assert "sha256" in failed[0]["detail"]
    status, body = post(device.port, png(x[2]))
    assert status == 200 and body["model_version"] == "1.1.0"  # the old model keeps serving
    assert device.ipc.reported_states(COMPONENT) == []  # not ERRORED: a nucleus would restart it
    assert device.process is not None and device.process.poll() is None
