"""The app with the real digits model and a fake IPC client: results and health out, live configuration,
validation naming the bad key, hot swap (and its failure), deferral of a component update, capture,
two-stage."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edgeml_inference.app import InferenceApp
from edgeml_inference.config import AppConfig
from inference_kit import FakeIpc, holdout, png, write_model_dir


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def base_config(root: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "ModelDirectory": str(root),
        "Mode": "microbatch",
        "MaxBatch": 8,
        "MaxWaitMs": 2,
        "InputDirectory": "",
        "InputTopic": "edgeml/inference/input",
        "HttpPort": 0,
        "ResultsTopic": "edgeml/inference/results",
        "IoTCoreTopic": "edgeml/{iot:thingName}/inference/results",
        "HealthTopic": "edgeml/inference/health",
        "HealthIntervalS": 0.2,
        "ModelPollS": 0,
        "TopK": 3,
    }
    config.update(overrides)
    return config


@pytest.fixture()
def model_root(tmp_path: Path) -> Path:
    write_model_dir(tmp_path / "models" / "1.0.0" / "linux-amd64", version="1.0.0")
    return tmp_path / "models"


@pytest.fixture()
def running(model_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[InferenceApp, FakeIpc]]:
    monkeypatch.setenv("AWS_IOT_THING_NAME", "core-1")
    ipc = FakeIpc(base_config(model_root))
    app = InferenceApp(AppConfig.from_mapping(ipc.get_configuration()), ipc).start()
    yield app, ipc
    app.stop()


def test_results_go_to_the_local_topic_and_iot_core_and_health_is_published(
    running: tuple[InferenceApp, FakeIpc],
) -> None:
    app, ipc = running
    x, _ = holdout()
    ipc.topic_handlers["edgeml/inference/input"](png(x[0]))
    result = app.submit(png(x[1]), "test").result(5)
    assert result.ok
    results = wait_for(
        lambda: (
            len(ipc.messages("edgeml/inference/results")) >= 2 and ipc.messages("edgeml/inference/results")
        )
    )
    assert {message["source"] for message in results} == {"topic:edgeml/inference/input", "test"}
    # one IoT Core message for both results: batched (IoTCoreBatchSize 50, sent after IoTCoreBatchMs)
    [(_, batch, _)] = wait_for(lambda: ipc.iot_core)
    assert [item["source"] for item in json.loads(batch)["results"]] == [m["source"] for m in results]
    assert {topic for topic, _, _ in ipc.iot_core} == {"edgeml/core-1/inference/results"}
    assert {qos for _, _, qos in ipc.iot_core} == {1}
    health = wait_for(lambda: [m for m in ipc.messages("edgeml/inference/health") if m.get("requests")])
    assert health[0]["model"]["name"] == "digits"
    assert set(health[0]["latency_ms"]) == {"p50", "p95", "p99"}
    assert "class_psi" in health[0]["drift"]


def test_an_invalid_update_is_rejected_naming_the_key(
    running: tuple[InferenceApp, FakeIpc], model_root: Path
) -> None:
    _, ipc = running
    assert ipc.on_validate is not None
    ipc.on_validate("deployment-1", base_config(model_root, MaxBatch=-3))
    ipc.on_validate("deployment-2", base_config(model_root, TopK=1))
    (rejected_id, accepted, message), (accepted_id, ok, _) = ipc.reports
    assert (rejected_id, accepted, accepted_id, ok) == ("deployment-1", False, "deployment-2", True)
    assert "MaxBatch" in message


def test_a_configuration_update_applies_without_restart(
    running: tuple[InferenceApp, FakeIpc], model_root: Path
) -> None:
    app, ipc = running
    x, _ = holdout()
    assert len(app.submit(png(x[0])).result(5).to_dict()["top_k"]) == 3
    batcher = app.batcher
    ipc.configuration = base_config(model_root, TopK=1, HttpPort=0, ResultsTopic="edgeml/other/results")
    assert ipc.on_update is not None
    ipc.on_update()
    result = app.submit(png(x[0])).result(5)
    assert len(result.to_dict()["top_k"]) == 1
    wait_for(lambda: ipc.messages("edgeml/other/results"))
    assert app.batcher is batcher  # same queue, same process


def test_a_new_model_version_is_swapped_in_after_a_component_update(
    running: tuple[InferenceApp, FakeIpc], model_root: Path
) -> None:
    app, ipc = running
    x, _ = holdout()
    write_model_dir(model_root / "1.1.0" / "linux-amd64", version="1.1.0")
    assert ipc.on_post is not None
    ipc.on_post("deployment-3")
    result = app.submit(png(x[0])).result(5)
    assert result.model_version == "1.1.0" and result.ok
    events = wait_for(
        lambda: [m for m in ipc.messages("edgeml/inference/health") if m.get("event") == "model_swapped"]
    )
    assert events[0]["to"]["version"] == "1.1.0"
    assert ipc.states == []


def test_a_corrupt_new_model_keeps_the_old_one_serving_and_reports_on_the_health_topic_not_errored(
    running: tuple[InferenceApp, FakeIpc], model_root: Path
) -> None:
    app, ipc = running
    x, _ = holdout()
    broken = write_model_dir(model_root / "2.0.0" / "linux-amd64", version="2.0.0")
    (broken / "model.onnx").write_bytes(b"not the model the metadata lists")
    assert ipc.on_post is not None
    ipc.on_post("deployment-4")
    result = app.submit(png(x[0])).result(5)
    assert result.ok and result.model_version == "1.0.0"
    assert ipc.states == []  # ERRORED would make the nucleus restart a component that still serves
    failures = wait_for(
        lambda: [m for m in ipc.messages("edgeml/inference/health") if m.get("event") == "model_swap_failed"]
    )
    assert "sha256" in failures[0]["detail"]


def test_a_component_update_waits_for_the_in_flight_batch(running: tuple[InferenceApp, FakeIpc]) -> None:
    app, ipc = running
    x, _ = holdout()
    backend = app.models.current.backend
    original = backend.run
    entered, release = threading.Event(), threading.Event()

    def slow(batch: np.ndarray) -> np.ndarray:
        entered.set()
        release.wait(5)
        return original(batch)

    backend.run = slow  # type: ignore[method-assign]
    future = app.submit(png(x[0]))
    assert entered.wait(5)
    assert ipc.on_pre is not None
    pre = threading.Thread(target=ipc.on_pre, args=("deployment-5",))
    pre.start()
    time.sleep(0.2)
    assert ipc.deferrals == []  # still inside the batch
    release.set()
    pre.join(5)
    backend.run = original  # type: ignore[method-assign]
    assert future.result(5).ok
    assert ipc.deferrals == [("deployment-5", 0, "in-flight batch finished")]


def test_low_confidence_inputs_are_captured_within_the_budget(model_root: Path, tmp_path: Path) -> None:
    x, _ = holdout()
    image = png(x[0])
    captures = tmp_path / "captures"
    config = base_config(
        model_root,
        ConfidenceThreshold=1.0,  # every result counts as low confidence
        CaptureSampleRate=1.0,
        CaptureBucket="edgeml-captures",
        CaptureDirectory=str(captures),
        CaptureDiskBudgetBytes=len(image) * 3,
    )
    ipc = FakeIpc(config)
    app = InferenceApp(AppConfig.from_mapping(config), ipc).start()
    try:
        for _ in range(6):
            app.submit(image).result(5)
        wait_for(lambda: app.capture.captured + app.capture.over_budget == 6)
    finally:
        app.stop()
    assert len(list(captures.glob("*.png"))) == 3
    assert app.capture.over_budget == 3


def test_low_confidence_results_escalate_to_a_topic_or_a_second_model(
    model_root: Path, tmp_path: Path
) -> None:
    x, _ = holdout()
    config = base_config(model_root, EscalationThreshold=1.0, EscalationTopic="edgeml/inference/escalations")
    ipc = FakeIpc(config)
    app = InferenceApp(AppConfig.from_mapping(config), ipc).start()
    try:
        app.submit(png(x[0])).result(5)
        escalated = wait_for(lambda: ipc.messages("edgeml/inference/escalations"))
        assert escalated[0]["status"] == "ok"
        second = write_model_dir(tmp_path / "second", version="9.0.0")
        app.apply_configuration(AppConfig.from_mapping({**config, "EscalationModelDirectory": str(second)}))
        result = app.submit(png(x[0])).result(5)
        assert result.escalation is not None
        assert result.escalation["model_version"] == "9.0.0" and result.escalation["status"] == "ok"
    finally:
        app.stop()
    assert json.loads(result.to_json_bytes())["escalation"]["label"] == result.escalation["label"]


def test_interval_mode_takes_one_pass_over_the_directory_per_interval(
    model_root: Path, tmp_path: Path
) -> None:
    x, _ = holdout()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for index in range(6):
        (inbox / f"{index}.png").write_bytes(png(x[index]))
    config = base_config(model_root, Mode="interval", IntervalMs=300, InputDirectory=str(inbox), MaxBatch=8)
    app = InferenceApp(AppConfig.from_mapping(config), FakeIpc(config)).start()
    try:
        wait_for(lambda: len(list((inbox / "done").glob("*.png"))) == 6)
        batches = app.pipeline.batches
    finally:
        app.stop()
    assert batches == 1  # six files found in one scan, answered in one backend run


def test_a_new_model_directory_in_the_configuration_is_swapped_in(
    running: tuple[InferenceApp, FakeIpc], model_root: Path, tmp_path: Path
) -> None:
    app, ipc = running
    other = write_model_dir(tmp_path / "elsewhere" / "linux-amd64", version="3.0.0")
    ipc.configuration = base_config(model_root, ModelDirectory=str(other))
    assert ipc.on_update is not None
    ipc.on_update()
    x, _ = holdout()
    assert app.submit(png(x[0])).result(5).model_version == "3.0.0"


def test_a_newer_version_folder_is_picked_up_by_the_poller(model_root: Path) -> None:
    config = base_config(model_root, ModelPollS=0.2)
    app = InferenceApp(AppConfig.from_mapping(config), FakeIpc(config)).start()
    try:
        write_model_dir(model_root / "1.0.1" / "linux-amd64", version="1.0.1")
        wait_for(lambda: app.models.current.metadata.version == "1.0.1")
    finally:
        app.stop()
    assert app.swapper.swaps == 1
