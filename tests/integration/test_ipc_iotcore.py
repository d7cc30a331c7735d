"""IoT Core MQTT through the IPC twin: PublishToIoTCore lands in the MQTT log and in the cloud twin's
iot-data (loopback moto), an unreachable cloud does not fail the call, and cloud messages reach
SubscribeToIoTCore streams."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from awsiot.greengrasscoreipc.model import QOS, UnauthorizedError
from ipc_harness import Events, access_control, ipc_client, policy
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from edgeml.twin.cloud.motoserver import MotoServer
from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.loopback import free_port

APP = "com.edgeml.Inference"
MQTT_POLICY = access_control(
    aws__greengrass__ipc__mqttproxy={
        "telemetry": policy("aws.greengrass#PublishToIoTCore", resources=("edgeml/+/results",)),
        "commands": policy("aws.greengrass#SubscribeToIoTCore", resources=("edgeml/commands/#",)),
    }
)


def _published_to_moto() -> list[tuple[str, bytes]]:
    return list(iotdata_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].published_payloads)


@pytest.fixture()
def server() -> Iterator[IpcServer]:
    with IpcServer() as ipc:
        ipc.register_component(APP, MQTT_POLICY)
        yield ipc


def test_publish_to_iot_core_reaches_mqtt_log_and_cloud_twin(server: IpcServer, aws: MotoServer) -> None:
    payload = json.dumps({"label": 7, "score": 0.98}).encode()
    with ipc_client(server, APP) as client:
        client.publish_to_iot_core(topic_name="edgeml/dev-1/results", qos=QOS.AT_LEAST_ONCE, payload=payload)
    assert server.wait_iot_core_forwarded(10.0)
    (entry,) = server.mqtt_log
    assert (entry.topic, entry.qos, entry.payload, entry.component) == (
        "edgeml/dev-1/results",
        1,
        payload,
        APP,
    )
    assert entry.forwarded is True and entry.error is None
    assert ("edgeml/dev-1/results", payload) in _published_to_moto()


def test_unreachable_cloud_is_recorded_and_the_call_still_succeeds(server: IpcServer) -> None:
    # No `aws` fixture: AWS_ENDPOINT_URL points at a closed loopback port (tests/conftest.py).
    with ipc_client(server, APP) as client:
        for n in range(3):
            client.publish_to_iot_core(
                topic_name="edgeml/dev-1/results", qos=QOS.AT_MOST_ONCE, payload=b"%d" % n
            )
    assert server.wait_iot_core_forwarded(30.0)
    assert [entry.payload for entry in server.mqtt_log] == [b"0", b"1", b"2"]
    assert all(entry.forwarded is False and entry.error for entry in server.mqtt_log)


def test_qos1_publishes_are_spooled_while_offline_and_delivered_in_order_when_the_cloud_returns() -> None:
    port = free_port()
    with IpcServer(iot_data_endpoint_url=f"http://127.0.0.1:{port}") as server:
        server.register_component(APP, MQTT_POLICY)
        with ipc_client(server, APP) as client:
            for n in range(5):  # each call succeeds at once, the cloud being down
                client.publish_to_iot_core(
                    topic_name="edgeml/dev-2/results", qos=QOS.AT_LEAST_ONCE, payload=b"spooled %d" % n
                )
            client.publish_to_iot_core(topic_name="edgeml/dev-2/results", qos=QOS.AT_MOST_ONCE, payload=b"q0")
        assert not server.wait_iot_core_forwarded(1.0)  # still spooled
        head = server.mqtt_log[0]
        assert head.forwarded is None and head.error and head.attempts >= 2
        with MotoServer(port=port):
            assert server.wait_iot_core_forwarded(20.0)
        log = server.mqtt_log
        assert [entry.forwarded for entry in log] == [True] * 5 + [True]
        delivered = [payload for topic, payload in _published_to_moto() if topic == "edgeml/dev-2/results"]
        assert delivered == [b"spooled %d" % n for n in range(5)] + [b"q0"]


def test_spooled_publishes_end_undelivered_when_the_server_stops(server: IpcServer) -> None:
    with ipc_client(server, APP) as client:
        client.publish_to_iot_core(topic_name="edgeml/dev-3/results", qos=QOS.AT_LEAST_ONCE, payload=b"x")
    server.stop()
    (entry,) = server.mqtt_log
    assert entry.forwarded is False and entry.error and entry.done.is_set()


def test_publish_outside_mqtt_policy_is_unauthorized(server: IpcServer) -> None:
    with ipc_client(server, APP) as client, pytest.raises(UnauthorizedError):
        client.publish_to_iot_core(topic_name="other/topic", qos=QOS.AT_MOST_ONCE, payload=b"x")
    assert server.mqtt_log == []


def test_subscribe_to_iot_core_receives_messages_from_the_cloud(server: IpcServer) -> None:
    events = Events()
    with ipc_client(server, APP) as client:
        client.subscribe_to_iot_core(
            topic_name="edgeml/commands/#", qos=QOS.AT_LEAST_ONCE, on_stream_event=events
        )
        with pytest.raises(UnauthorizedError):
            client.subscribe_to_iot_core(
                topic_name="elsewhere/#", qos=QOS.AT_MOST_ONCE, on_stream_event=Events()
            )
        assert server.publish_from_cloud("edgeml/commands/dev-1/reload", b'{"model": "1.1.0"}') == 1
        assert server.publish_from_cloud("edgeml/other", b"ignored") == 0
        (event,) = events.wait_for(1)
    assert event.message.topic_name == "edgeml/commands/dev-1/reload"
    assert event.message.payload == b'{"model": "1.1.0"}'
