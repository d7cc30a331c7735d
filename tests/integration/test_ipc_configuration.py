"""Component configuration through the IPC twin: get by key path, merge, change events, and
deployment-time validation (accepted applies, rejected leaves everything as it was)."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from awsiot.greengrasscoreipc.model import (
    ConfigurationValidityReport,
    ConfigurationValidityStatus,
    FailedUpdateConditionCheckError,
    InvalidArgumentsError,
    ResourceNotFoundError,
)
from ipc_harness import Events, ipc_client

from edgeml.twin.device.ipc import IpcServer

INFERENCE = "com.edgeml.Inference"
BASE_CONFIG: dict[str, Any] = {
    "model": {"name": "digits", "threshold": 0.5, "topK": 3},
    "sinks": {"ipcTopic": "edgeml/results", "iotCore": {"enabled": True, "qos": 1}},
    "intervalMs": 1000,
}


@pytest.fixture()
def server() -> Iterator[IpcServer]:
    with IpcServer(forward_to_iot_core=False, validation_timeout_s=5.0) as ipc:
        ipc.register_component(INFERENCE, BASE_CONFIG)
        ipc.register_component("com.example.Other", {"mode": "shadow"})
        yield ipc


def test_get_configuration_by_key_path(server: IpcServer) -> None:
    with ipc_client(server, INFERENCE) as client:
        assert client.get_configuration().value == BASE_CONFIG
        assert client.get_configuration(key_path=["sinks", "iotCore"]).value == {"enabled": True, "qos": 1}
        # A leaf comes back wrapped in its key, as the nucleus answers.
        assert client.get_configuration(key_path=["model", "threshold"]).value == {"threshold": 0.5}
        other = client.get_configuration(component_name="com.example.Other", key_path=["mode"])
        assert (other.component_name, other.value) == ("com.example.Other", {"mode": "shadow"})
        with pytest.raises(ResourceNotFoundError):
            client.get_configuration(key_path=["model", "missing"])
        with pytest.raises(ResourceNotFoundError):
            client.get_configuration(component_name="com.example.Nope")


def test_update_configuration_merges_and_notifies_subscribers(server: IpcServer) -> None:
    events = Events()
    model_events = Events()
    with ipc_client(server, INFERENCE) as client, ipc_client(server, "com.example.Other") as watcher:
        client.subscribe_to_configuration_update(on_stream_event=events)
        watcher.subscribe_to_configuration_update(
            component_name=INFERENCE, key_path=["model"], on_stream_event=model_events
        )
        client.update_configuration(
            key_path=["model"],
            value_to_merge={"threshold": 0.8, "labels": {"0": "zero"}},
            timestamp=datetime.datetime.now(),
        )
        client.update_configuration(
            key_path=[], value_to_merge={"intervalMs": 250}, timestamp=datetime.datetime.now()
        )
        merged = client.get_configuration().value
        paths = {tuple(e.configuration_update_event.key_path) for e in events.wait_for(3)}
        watched = {tuple(e.configuration_update_event.key_path) for e in model_events.wait_for(2)}
    assert merged["model"] == {"name": "digits", "threshold": 0.8, "topK": 3, "labels": {"0": "zero"}}
    assert merged["intervalMs"] == 250
    assert merged["sinks"] == BASE_CONFIG["sinks"]
    assert paths == {("model", "threshold"), ("model", "labels", "0"), ("intervalMs",)}
    assert watched == {("model", "threshold"), ("model", "labels", "0")}
    assert all(e.configuration_update_event.component_name == INFERENCE for e in events.items)
    assert server.configuration(INFERENCE) == merged


def test_update_with_an_older_timestamp_fails_the_condition_check(server: IpcServer) -> None:
    now = datetime.datetime.now()
    with ipc_client(server, INFERENCE) as client:
        client.update_configuration(key_path=["model"], value_to_merge={"threshold": 0.7}, timestamp=now)
        with pytest.raises(FailedUpdateConditionCheckError):
            client.update_configuration(
                key_path=["model"],
                value_to_merge={"threshold": 0.1},
                timestamp=now - datetime.timedelta(seconds=10),
            )
        assert client.get_configuration(key_path=["model", "threshold"]).value == {"threshold": 0.7}


def _validator(client: Any, reject_if: Any) -> Events:
    """Subscribes to validation events and answers each one from a worker thread."""
    events = Events()

    def on_event(event: Any) -> None:
        events(event)
        update = event.validate_configuration_update_event
        bad = reject_if(update.configuration)
        report = ConfigurationValidityReport(
            status=ConfigurationValidityStatus.REJECTED if bad else ConfigurationValidityStatus.ACCEPTED,
            deployment_id=update.deployment_id,
            message=bad or "ok",
        )
        threading.Thread(
            target=client.send_configuration_validity_report, kwargs={"configuration_validity_report": report}
        ).start()

    client.subscribe_to_validate_configuration_updates(on_stream_event=on_event)
    return events


def _threshold_problem(config: dict[str, Any]) -> str | None:
    threshold = config.get("model", {}).get("threshold")
    return None if isinstance(threshold, float) and 0 <= threshold <= 1 else f"model.threshold {threshold!r}"


def test_validation_accepted_applies_the_new_configuration(server: IpcServer) -> None:
    proposed = {**BASE_CONFIG, "model": {**BASE_CONFIG["model"], "threshold": 0.9}}
    changes = Events()
    with ipc_client(server, INFERENCE) as client:
        validations = _validator(client, _threshold_problem)
        client.subscribe_to_configuration_update(on_stream_event=changes)
        report = server.push_configuration_update(INFERENCE, proposed, deployment_id="dep-1")
        (event,) = validations.wait_for(1)
        (change,) = changes.wait_for(1)
    assert report.accepted and report.deployment_id == "dep-1"
    assert event.validate_configuration_update_event.configuration == proposed
    assert change.configuration_update_event.key_path == ["model", "threshold"]
    assert server.configuration(INFERENCE) == proposed


def test_validation_rejected_leaves_the_configuration_unchanged(server: IpcServer) -> None:
    proposed = {**BASE_CONFIG, "model": {**BASE_CONFIG["model"], "threshold": 7}}
    changes = Events()
    with ipc_client(server, INFERENCE) as client:
        _validator(client, _threshold_problem)
        client.subscribe_to_configuration_update(on_stream_event=changes)
        report = server.push_configuration_update(INFERENCE, proposed)
        assert client.get_configuration().value == BASE_CONFIG
    assert not report.accepted
    assert report.status == "REJECTED"
    assert report.message == "model.threshold 7"
    assert server.configuration(INFERENCE) == BASE_CONFIG
    assert changes.items == []


def test_validity_report_without_a_pending_validation_is_invalid(server: IpcServer) -> None:
    report = ConfigurationValidityReport(status=ConfigurationValidityStatus.ACCEPTED, deployment_id="never")
    with ipc_client(server, INFERENCE) as client, pytest.raises(InvalidArgumentsError):
        client.send_configuration_validity_report(configuration_validity_report=report)


def test_silent_validator_counts_as_rejected(server: IpcServer) -> None:
    with ipc_client(server, INFERENCE) as client:
        client.subscribe_to_validate_configuration_updates(on_stream_event=Events())
        report = server.push_configuration_update(INFERENCE, {"intervalMs": 5}, timeout_s=0.3)
    assert not report.accepted
    assert "no validity report" in (report.message or "")
    assert server.configuration(INFERENCE) == BASE_CONFIG
