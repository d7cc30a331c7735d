"""Lifecycle operations through the IPC twin: UpdateState, component update deferral and
GetComponentDetails (authorised through the Greengrass CLI's accessControl, as on a device)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from awsiot.greengrasscoreipc.model import LifecycleState, ReportedLifecycleState, UnauthorizedError
from ipc_harness import Events, access_control, ipc_client, policy

from edgeml.twin.device.ipc import IpcServer

INFERENCE = "com.edgeml.Inference"
MODEL = "com.edgeml.Model.digits"


@pytest.fixture()
def server() -> Iterator[IpcServer]:
    details_policy = access_control(
        aws__greengrass__Cli={"details": policy("aws.greengrass#GetComponentDetails", resources=(MODEL,))}
    )
    with IpcServer(forward_to_iot_core=False) as ipc:
        ipc.register_component(INFERENCE, details_policy, version="1.2.0")
        ipc.register_component(MODEL, {"variant": "cpu-fp32"}, version="1.0.0")
        yield ipc


def test_update_state_is_visible_on_the_server(server: IpcServer) -> None:
    with ipc_client(server, INFERENCE) as client:
        client.update_state(state=ReportedLifecycleState.ERRORED)
        assert server.component_states[INFERENCE] == "ERRORED"
        client.update_state(state=ReportedLifecycleState.RUNNING)
    assert server.component_states[INFERENCE] == "RUNNING"
    assert server.reported_states(INFERENCE) == ["ERRORED", "RUNNING"]


def test_get_component_details_within_access_control(server: IpcServer) -> None:
    server.set_component_state(MODEL, "FINISHED")
    with ipc_client(server, INFERENCE) as client:
        details = client.get_component_details(component_name=MODEL).component_details
        with pytest.raises(UnauthorizedError):
            client.get_component_details(component_name=INFERENCE)
    assert (details.component_name, details.version, details.state) == (
        MODEL,
        "1.0.0",
        LifecycleState.FINISHED,
    )
    assert details.configuration == {"variant": "cpu-fp32"}


def _deferring_subscriber(client: Any, recheck_after_ms: int) -> Events:
    events = Events()

    def on_event(event: Any) -> None:
        events(event)
        if event.pre_update_event is not None:
            threading.Thread(
                target=client.defer_component_update,
                kwargs={
                    "deployment_id": event.pre_update_event.deployment_id,
                    "message": "batch in flight" if recheck_after_ms else "go ahead",
                    "recheck_after_ms": recheck_after_ms,
                },
            ).start()

    client.subscribe_to_component_updates(on_stream_event=on_event)
    return events


def test_component_update_deferred_then_accepted(server: IpcServer) -> None:
    with ipc_client(server, INFERENCE) as client:
        events = _deferring_subscriber(client, recheck_after_ms=5000)
        deferrals = server.announce_component_update("dep-7", {MODEL: "1.1.0"}, wait_s=5.0)
        assert [(d.component, d.deployment_id, d.recheck_after_ms, d.message) for d in deferrals] == [
            (INFERENCE, "dep-7", 5000, "batch in flight")
        ]
        assert server.component_version(MODEL) == "1.0.0"
        (pre,) = events.wait_for(1)
        assert pre.pre_update_event.deployment_id == "dep-7"
        assert pre.pre_update_event.is_ggc_restarting is False

    with ipc_client(server, INFERENCE) as client:
        events = _deferring_subscriber(client, recheck_after_ms=0)
        assert server.announce_component_update("dep-7", {MODEL: "1.1.0"}, wait_s=5.0) == []
        pre, post = events.wait_for(2)
    assert pre.pre_update_event.deployment_id == "dep-7"
    assert post.post_update_event.deployment_id == "dep-7"
    assert server.component_version(MODEL) == "1.1.0"


def test_component_update_with_no_subscribers_goes_ahead(server: IpcServer) -> None:
    assert server.announce_component_update("dep-8", {MODEL: "2.0.0"}, wait_s=1.0) == []
    assert server.component_version(MODEL) == "2.0.0"
