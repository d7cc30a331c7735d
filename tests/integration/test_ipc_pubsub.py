"""Local pub/sub through the IPC twin with the unmodified awsiotsdk V2 client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from awsiot.greengrasscoreipc.model import (
    BinaryMessage,
    JsonMessage,
    PublishMessage,
    ReceiveMode,
    UnauthorizedError,
)
from ipc_harness import PUBSUB_ALL, Events, access_control, ipc_client, policy

from edgeml.twin.device.ipc import IpcServer


@pytest.fixture()
def server() -> Iterator[IpcServer]:
    with IpcServer(forward_to_iot_core=False) as ipc:
        ipc.register_component("com.example.Publisher", PUBSUB_ALL)
        ipc.register_component("com.example.Subscriber", PUBSUB_ALL)
        yield ipc


def test_json_message_round_trip_between_two_components(server: IpcServer) -> None:
    events = Events()
    with (
        ipc_client(server, "com.example.Publisher") as publisher,
        ipc_client(server, "com.example.Subscriber") as subscriber,
    ):
        subscriber.subscribe_to_topic(topic="results/cam1", on_stream_event=events)
        message = {"label": "cat", "score": 0.91, "boxes": [[1, 2, 3, 4]]}
        publisher.publish_to_topic(
            topic="results/cam1", publish_message=PublishMessage(json_message=JsonMessage(message=message))
        )
        (event,) = events.wait_for(1)
    assert event.json_message.message == message
    assert event.json_message.context.topic == "results/cam1"
    assert event.binary_message is None


def test_binary_message_round_trip_with_wildcard_subscription(server: IpcServer) -> None:
    events = Events()
    payload = bytes(range(256)) * 4
    with (
        ipc_client(server, "com.example.Publisher") as publisher,
        ipc_client(server, "com.example.Subscriber") as subscriber,
    ):
        subscriber.subscribe_to_topic(topic="frames/+/raw", on_stream_event=events)
        for camera in ("cam1", "cam2"):
            publisher.publish_to_topic(
                topic=f"frames/{camera}/raw",
                publish_message=PublishMessage(binary_message=BinaryMessage(message=payload)),
            )
        publisher.publish_to_topic(
            topic="frames/cam1/other",
            publish_message=PublishMessage(binary_message=BinaryMessage(message=b"x")),
        )
        received = events.wait_for(2)
        time.sleep(0.2)
    assert [event.binary_message.message for event in events.items] == [payload, payload]
    assert [event.binary_message.context.topic for event in received] == [
        "frames/cam1/raw",
        "frames/cam2/raw",
    ]


def test_receive_messages_from_others_skips_own_publications(server: IpcServer) -> None:
    own, everyone = Events(), Events()
    with (
        ipc_client(server, "com.example.Publisher") as publisher,
        ipc_client(server, "com.example.Subscriber") as subscriber,
    ):
        publisher.subscribe_to_topic(
            topic="chat", receive_mode=ReceiveMode.RECEIVE_MESSAGES_FROM_OTHERS, on_stream_event=own
        )
        subscriber.subscribe_to_topic(topic="chat", on_stream_event=everyone)
        publisher.publish_to_topic(
            topic="chat", publish_message=PublishMessage(json_message=JsonMessage(message={}))
        )
        subscriber.publish_to_topic(
            topic="chat", publish_message=PublishMessage(json_message=JsonMessage(message={}))
        )
        everyone.wait_for(2)
        own.wait_for(1)
        time.sleep(0.2)
    assert len(own.items) == 1


def test_closed_subscription_gets_nothing_more(server: IpcServer) -> None:
    events = Events()
    message = PublishMessage(json_message=JsonMessage(message={"n": 1}))
    with (
        ipc_client(server, "com.example.Publisher") as publisher,
        ipc_client(server, "com.example.Subscriber") as subscriber,
    ):
        _, operation = subscriber.subscribe_to_topic(topic="t", on_stream_event=events)
        publisher.publish_to_topic(topic="t", publish_message=message)
        events.wait_for(1)
        operation.close().result(5)
        time.sleep(0.1)  # the terminate frame is on its way to the server
        publisher.publish_to_topic(topic="t", publish_message=message)
        time.sleep(0.2)
    assert len(events.items) == 1


def test_publish_outside_access_control_is_refused_with_unauthorized_error() -> None:
    narrow = access_control(
        aws__greengrass__ipc__pubsub={
            "results": policy("aws.greengrass#PublishToTopic", resources=("results/*",)),
        }
    )
    with IpcServer(forward_to_iot_core=False) as server:
        server.register_component("com.example.Narrow", narrow)
        server.register_component("com.example.NoPolicy", {})
        with ipc_client(server, "com.example.Narrow") as client:
            message = PublishMessage(json_message=JsonMessage(message={}))
            client.publish_to_topic(topic="results/cam1", publish_message=message)
            with pytest.raises(UnauthorizedError) as refused:
                client.publish_to_topic(topic="commands/reboot", publish_message=message)
            assert "commands/reboot" in refused.value.message
            with pytest.raises(UnauthorizedError):
                client.subscribe_to_topic(topic="results/cam1", on_stream_event=Events())
            # The connection survives a refused call.
            client.publish_to_topic(topic="results/cam2", publish_message=message)
        with ipc_client(server, "com.example.NoPolicy") as client, pytest.raises(UnauthorizedError):
            client.publish_to_topic(topic="results/cam1", publish_message=message)


def test_policy_change_in_configuration_takes_effect(server: IpcServer) -> None:
    message = PublishMessage(json_message=JsonMessage(message={}))
    with ipc_client(server, "com.example.Publisher") as client:
        client.publish_to_topic(topic="a", publish_message=message)
        report = server.push_configuration_update("com.example.Publisher", {"accessControl": {}})
        assert report.accepted
        with pytest.raises(UnauthorizedError):
            client.publish_to_topic(topic="a", publish_message=message)


def test_twin_side_publish_reaches_subscribers(server: IpcServer) -> None:
    events = Events()
    with ipc_client(server, "com.example.Subscriber") as subscriber:
        subscriber.subscribe_to_topic(topic="images/in", on_stream_event=events)
        assert server.publish_local("images/in", b"\x89PNG") == 1
        assert server.publish_local("images/in", {"path": "/tmp/x.png"}) == 1
        first, second = events.wait_for(2)
    assert first.binary_message.message == b"\x89PNG"
    assert second.json_message.message == {"path": "/tmp/x.png"}
