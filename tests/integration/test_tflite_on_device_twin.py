"""A user's .tflite model on a simulated core device, end to end: the digits model as .tflite (written from
the repository's ONNX file by edgeml.model.zoo.tflite_export, with its model card beside it, as a user
would hand them over) is compiled as it is (-t litert-fp32) and packaged as com.edgeml.model.Digits;
Runtime, Model and Inference are built and published through the cloud twin with `edgeml build`/`edgeml
publish`'s code and deployed to a thing group holding one nucleus twin.

Nothing is set up by hand on the device: the deployment sets only what a deployer would (WheelhouseDir, the
shared wheel cache of the Runtime's pinned requirements, so its real Install step builds the venv offline
with pip --no-index, as on a device without index access; a shorter HealthIntervalS). ai-edge-litert
reaches the venv only through requirements/linux-x86_64.txt. The app must then load the model in LiteRT,
answer every image as the ONNX model does, and report LiteRT in the health records it publishes to IoT Core.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from nucleus_harness import cloud, deploy, device, group_arn, outcome_of, unique, wait_log

from edgeml.demo.digits import write_holdout_images
from edgeml.model.datasets import digits_split
from edgeml.model.zoo.tflite_export import onnx_to_tflite
from edgeml.twin.device.nucleus import NucleusTwin
from edgeml.twin.device.nucleus.stack import (
    INFERENCE,
    MODEL,
    REPO,
    RUNTIME,
    edgeml_deployment,
    publish_edgeml_stack,
    wheelhouse,
)
from edgeml.twin.loopback import wait_for

pytestmark = pytest.mark.slow
PYTHON = "3.12"
WHEELHOUSE = wheelhouse(PYTHON)
PYENV_BIN = Path.home() / ".pyenv" / "versions" / "3.12.1" / "bin"
DIGITS = REPO / "models" / "digits"
IMAGES = 12


@dataclass
class Device:
    twin: NucleusTwin
    deployment: str
    versions: dict[str, str]
    labels: dict[str, int]  # image file name -> true label


@pytest.fixture(scope="module")
def tflite_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Device]:
    if not WHEELHOUSE.is_dir() or not (PYENV_BIN / "python3").exists():
        pytest.skip(f"needs the shared wheel cache {WHEELHOUSE} and Python {PYTHON} at {PYENV_BIN}")
    work = tmp_path_factory.mktemp("tflite-device")
    user = work / "user-model"
    user.mkdir()
    shutil.copyfile(DIGITS / "model-card.json", user / "model-card.json")
    source = onnx_to_tflite(DIGITS / "model.onnx", user / "digits.tflite")
    bucket, group = unique("edgeml-tflite-"), unique("edgeml-tflite-")
    with cloud(work / "cloud") as endpoint:
        versions = publish_edgeml_stack(endpoint.endpoint_url, work, bucket, model_source=source)
        # The device OS: its PATH has a Python 3.12 (as a Ubuntu 24.04 core device does).
        twin = device(
            endpoint, work, unique("edgeml-core-"), [group], system_path=f"{PYENV_BIN}:/usr/bin:/bin"
        )
        twin.start()
        try:
            components = edgeml_deployment(versions, WHEELHOUSE, "", {"HttpPort": 0, "HealthIntervalS": 1})
            deployment = deploy(endpoint, group_arn(endpoint, group), components)
            outcome_of(twin, deployment, timeout_s=600)
            labels = write_holdout_images(twin.paths.work_path(INFERENCE) / "input", IMAGES)
            yield Device(twin, deployment, versions, labels)
        finally:
            twin.stop()


def _pinned(name: str) -> str:
    """The version requirements/linux-x86_64.txt pins `name` at (one line for every Python)."""
    lines = (REPO / "components" / RUNTIME / "requirements" / "linux-x86_64.txt").read_text().splitlines()
    (version,) = [line.split("==", 1)[1].strip() for line in lines if line.startswith(f"{name}==")]
    return version


def _messages(twin: NucleusTwin, suffix: str) -> list[dict[str, Any]]:
    topic = f"edgeml/{twin.thing_name}/inference/{suffix}"
    return [json.loads(entry.payload) for entry in twin.kernel.ipc.mqtt_log if entry.topic == topic]


def _results(twin: NucleusTwin) -> dict[str, dict[str, Any]]:
    """source -> result, from the IoT Core messages (a batch {"kind": "results", ...} or one result)."""
    found: dict[str, dict[str, Any]] = {}
    for message in _messages(twin, "results"):
        for result in message["results"] if message.get("kind") == "results" else [message]:
            found[str(result["source"])] = result
    return found


def test_the_runtime_installs_litert_from_its_requirements_and_the_deployment_succeeds(
    tflite_device: Device,
) -> None:
    twin = tflite_device.twin
    outcome = next(o for d, o in twin.outcomes if d == tflite_device.deployment)
    assert outcome.status == "SUCCESSFUL", (outcome.message, twin.log_path(RUNTIME).read_text()[-3000:])
    assert twin.states()[RUNTIME] == "FINISHED" and twin.states()[MODEL] == "FINISHED"
    site = twin.paths.work_path(RUNTIME) / "venv" / "lib" / f"python{PYTHON}" / "site-packages"
    installed = sorted(path.name for path in site.glob("ai_edge_litert-*.dist-info"))
    assert installed == [f"ai_edge_litert-{_pinned('ai-edge-litert')}.dist-info"]  # by the real Install step
    (metadata,) = twin.paths.unarchive_path(MODEL, tflite_device.versions[MODEL]).rglob("metadata.json")
    model = json.loads(metadata.read_text())
    assert (model["framework"], model["model_file"]) == ("tflite", "model.tflite")
    assert model["target"] == "litert-fp32" and model["accuracy"]["top1"] is not None  # scored in LiteRT
    assert (metadata.parent / "model.tflite").read_bytes()[4:8] == b"TFL3"  # the flatbuffer, as it is


def test_the_app_loads_the_model_in_litert_and_answers_every_image_as_the_onnx_model_does(
    tflite_device: Device,
) -> None:
    twin = tflite_device.twin
    wait_for(lambda: twin.states()[INFERENCE] == "RUNNING", f"{INFERENCE} RUNNING")
    wait_log(twin.log_path(INFERENCE), "litert-cpu", 120)  # "loaded model digits ... on ('litert-cpu',)"
    names = sorted(tflite_device.labels)
    wait_for(lambda: {f"file:{name}" for name in names} <= set(_results(twin)), "every image's result", 120)
    results = _results(twin)
    assert all(results[f"file:{name}"]["status"] == "ok" for name in names)
    holdout = digits_split()[2]
    session = ort.InferenceSession(str(DIGITS / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = np.argmax(session.run(None, {"input": holdout.x[:IMAGES]})[0], axis=1)
    assert [results[f"file:{name}"]["class_index"] for name in names] == expected.tolist()


def test_the_devices_health_records_in_iot_core_name_litert(tflite_device: Device) -> None:
    twin = tflite_device.twin
    health = wait_for(
        lambda: [m for m in _messages(twin, "health") if m.get("kind") == "health"],
        "a health record published to IoT Core",
        60,
    )
    assert health[-1]["model"]["providers"] == ["litert-cpu"]
    assert health[-1]["model"]["version"] == tflite_device.versions[MODEL]
