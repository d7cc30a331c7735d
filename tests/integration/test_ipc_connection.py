"""Connection-level behaviour of the IPC twin: SVCUID at CONNECT, the component environment,
modelled errors for what the twin does not serve, and a corrupt frame closing only its connection."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import awsiot.greengrasscoreipc
import pytest
from awsiot.eventstreamrpc import AccessDeniedError
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import JsonMessage, PublishMessage, ServiceError
from ipc_harness import PUBSUB_ALL, Events, ipc_client

from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.device.ipc.errors import ServerStartError
from edgeml.twin.device.ipc.framing import decode_message, encode_message
from edgeml.twin.device.ipc.headers import Header
from edgeml.twin.device.ipc.rpc import MessageFlag, MessageType, parse_rpc


@pytest.fixture()
def server() -> Iterator[IpcServer]:
    with IpcServer(forward_to_iot_core=False) as ipc:
        ipc.register_component("com.example.App", PUBSUB_ALL)
        yield ipc


def _connect_frame(token: str) -> bytes:
    headers = [
        Header.int32(":message-type", MessageType.CONNECT),
        Header.int32(":message-flags", 0),
        Header.int32(":stream-id", 0),
        Header.string(":version", "0.1.0"),
    ]
    return encode_message(headers, json.dumps({"authToken": token}).encode())


def _read_frame(sock: socket.socket) -> bytes:
    head = sock.recv(12, socket.MSG_WAITALL)
    total = int.from_bytes(head[:4], "big")
    return head + sock.recv(total - 12, socket.MSG_WAITALL)


def test_unknown_svcuid_is_refused_at_connect(server: IpcServer) -> None:
    with pytest.raises(AccessDeniedError):
        awsiot.greengrasscoreipc.connect(
            ipc_socket=str(server.socket_path), authtoken="not-a-token", timeout=5.0
        )


def test_component_env_is_all_a_default_client_needs(
    server: IpcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in server.component_env("com.example.App").items():
        monkeypatch.setenv(key, value)
    client = GreengrassCoreIPCClientV2()
    try:
        response = client.get_configuration(key_path=["accessControl"])
    finally:
        client.close()
    assert response.component_name == "com.example.App"
    assert "aws.greengrass.ipc.pubsub" in response.value


def test_operation_the_twin_does_not_serve_is_a_modelled_service_error(server: IpcServer) -> None:
    with ipc_client(server, "com.example.App") as client:
        with pytest.raises(ServiceError) as refused:
            client.get_secret_value(secret_id="db-password")
        assert "GetSecretValue" in refused.value.message
        client.update_state(state="RUNNING")  # the connection is still usable


def test_corrupt_frame_closes_only_that_connection(server: IpcServer) -> None:
    events = Events()
    with ipc_client(server, "com.example.App") as client:
        client.subscribe_to_topic(topic="health", on_stream_event=events)
        token = server.component_env("com.example.App")["SVCUID"]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(5)
            raw.connect(str(server.socket_path))
            raw.sendall(_connect_frame(token))
            ack = parse_rpc(decode_message(_read_frame(raw)))
            assert ack.type == MessageType.CONNECT_ACK
            assert ack.flags & MessageFlag.CONNECTION_ACCEPTED
            frame = bytearray(_connect_frame(token))
            frame[-1] ^= 0xFF  # break the message CRC
            raw.sendall(bytes(frame))
            assert raw.recv(1) == b""  # the server hung up on this client
        client.publish_to_topic(
            topic="health", publish_message=PublishMessage(json_message=JsonMessage(message={}))
        )
        events.wait_for(1)


def test_refused_connect_on_raw_socket_gets_a_connect_ack_without_accepted_flag(server: IpcServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(5)
        raw.connect(str(server.socket_path))
        raw.sendall(_connect_frame("wrong"))
        ack = parse_rpc(decode_message(_read_frame(raw)))
    assert ack.type == MessageType.CONNECT_ACK
    assert not ack.flags & MessageFlag.CONNECTION_ACCEPTED


def test_socket_path_over_the_unix_limit_is_refused_before_binding() -> None:
    with pytest.raises(ServerStartError, match="107-byte limit"):
        IpcServer("/tmp/" + "x" * 120 + "/ipc.socket")


def test_tokens_belong_to_one_device() -> None:
    with IpcServer(forward_to_iot_core=False) as first, IpcServer(forward_to_iot_core=False) as second:
        token = first.register_component("com.example.App", {})
        second.register_component("com.example.App", {})
        with pytest.raises(AccessDeniedError):
            awsiot.greengrasscoreipc.connect(ipc_socket=str(second.socket_path), authtoken=token, timeout=5.0)


def test_stopping_the_server_disconnects_its_clients() -> None:
    server = IpcServer(forward_to_iot_core=False).start()
    server.register_component("com.example.App", PUBSUB_ALL)
    try:
        with ipc_client(server, "com.example.App") as client:
            client.subscribe_to_topic(topic="t", on_stream_event=Events())
            server.stop()
            with pytest.raises(Exception):  # noqa: B017 - the client's own closed-connection error
                client.update_state(state="RUNNING")
    finally:
        server.stop()
    assert not server.socket_path.exists()


def test_client_that_stops_reading_is_cut_off(server: IpcServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edgeml.twin.device.ipc.connection.MAX_UNSENT_BYTES", 256 * 1024)
    token = server.component_env("com.example.App")["SVCUID"]
    subscribe = encode_message(
        [
            Header.int32(":message-type", MessageType.APPLICATION_MESSAGE),
            Header.int32(":message-flags", 0),
            Header.int32(":stream-id", 1),
            Header.string("operation", "aws.greengrass#SubscribeToTopic"),
        ],
        json.dumps({"topic": "firehose"}).encode(),
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(5)
        raw.connect(str(server.socket_path))
        raw.sendall(_connect_frame(token))
        _read_frame(raw)
        raw.sendall(subscribe)
        _read_frame(raw)  # SubscribeToTopicResponse; from here on this client reads nothing
        deliveries = [server.publish_local("firehose", b"x" * 65536) for _ in range(400)]
    assert deliveries[0] == 1
    assert deliveries[-1] == 0  # the stalled subscriber was disconnected, the server kept going
