"""The app in-process with the real IPC client (`SdkIpcClient` over GreengrassCoreIPCClientV2) against the
IPC twin: results on the local bus and to IoT Core, and a component update held until the batch ends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import awsiot.greengrasscoreipc
import numpy as np
import pytest
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from edgeml_inference.app import InferenceApp
from edgeml_inference.config import AppConfig
from edgeml_inference.ipc import SdkIpcClient
from inference_kit import holdout, png, write_model_dir

from edgeml.twin.device.ipc import IpcServer

APP = "com.edgeml.Inference"
READER = "test.Reader"


def connect(server: IpcServer, component: str) -> GreengrassCoreIPCClientV2:
    env = server.component_env(component)
    connection = awsiot.greengrasscoreipc.connect(
        ipc_socket=env["AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"],
        authtoken=env["SVCUID"],
        timeout=5.0,
    )
    return GreengrassCoreIPCClientV2(client=connection)


def policy(operation: str, *topics: str) -> dict[str, Any]:
    return {"policyDescription": "test", "operations": [operation], "resources": list(topics)}


@pytest.fixture()
def twin(tmp_path: Path) -> Iterator[tuple[IpcServer, InferenceApp, list[bytes]]]:
    write_model_dir(tmp_path / "models" / "1.0.0" / "linux-amd64")
    configuration: dict[str, Any] = {
        "ModelDirectory": str(tmp_path / "models"),
        "Mode": "microbatch",
        "MaxWaitMs": 1,
        "IoTCoreTopic": "edgeml/core-1/inference/results",
        "IoTCoreBatchSize": 1,  # a message per result here; batching: test_inference_readiness.py
        "HealthIntervalS": 3600,
        "ModelPollS": 0,
        "accessControl": {
            "aws.greengrass.ipc.pubsub": {
                "publish": policy(
                    "aws.greengrass#PublishToTopic", "edgeml/inference/results", "edgeml/inference/health"
                )
            },
            "aws.greengrass.ipc.mqttproxy": {
                "iot": policy("aws.greengrass#PublishToIoTCore", "edgeml/core-1/inference/results")
            },
        },
    }
    server = IpcServer(forward_to_iot_core=False).start()
    server.register_component(APP, configuration)
    server.register_component(
        READER,
        {
            "accessControl": {
                "aws.greengrass.ipc.pubsub": {
                    "sub": policy("aws.greengrass#SubscribeToTopic", "edgeml/inference/results")
                }
            }
        },
    )
    reader = connect(server, READER)
    received: list[bytes] = []
    reader.subscribe_to_topic(
        topic="edgeml/inference/results",
        on_stream_event=lambda event: received.append(bytes(event.binary_message.message)),
    )
    ipc = SdkIpcClient(connect(server, APP))
    app = InferenceApp(AppConfig.from_mapping(ipc.get_configuration()), ipc).start()
    try:
        yield server, app, received
    finally:
        app.stop()
        ipc.close()
        reader.close()
        server.stop()


def wait_for(condition: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_results_reach_the_local_bus_and_iot_core(twin: tuple[IpcServer, InferenceApp, list[bytes]]) -> None:
    server, app, received = twin
    x, _ = holdout()
    results = [app.submit(png(sample)).result(5) for sample in x[:3]]
    wait_for(lambda: len(received) >= 3)
    wait_for(lambda: len(server.mqtt_log) >= 3)
    assert {json.loads(payload)["request_id"] for payload in received} == {r.request_id for r in results}
    assert {entry.topic for entry in server.mqtt_log} == {"edgeml/core-1/inference/results"}
    assert {entry.qos for entry in server.mqtt_log} == {1}


def test_a_component_update_goes_ahead_only_after_the_in_flight_batch(
    twin: tuple[IpcServer, InferenceApp, list[bytes]],
) -> None:
    server, app, _ = twin
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
    outcome: dict[str, Any] = {}

    def announce() -> None:
        outcome["deferrals"] = server.announce_component_update(
            "d-1", {"com.edgeml.model.Digits": "1.0.1"}, 10
        )
        outcome["at"] = time.monotonic()

    announcer = threading.Thread(target=announce)
    announcer.start()
    time.sleep(0.3)
    assert "at" not in outcome  # the nucleus is still waiting for the app's answer
    released_at = time.monotonic()
    release.set()
    announcer.join(10)
    backend.run = original  # type: ignore[method-assign]
    assert outcome["deferrals"] == [] and outcome["at"] >= released_at
    assert future.result(5).ok
