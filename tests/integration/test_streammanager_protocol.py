"""The unmodified stream_manager SDK client against the twin over loopback TCP, as a device app uses it."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cbor2
import pytest
from stream_manager import (
    MessageStreamDefinition,
    Persistence,
    ReadMessagesOptions,
    StrategyOnFull,
    StreamManagerClient,
)
from stream_manager.data import Operation, ResponseStatusCode
from stream_manager.exceptions import (
    ConnectFailedException,
    InvalidRequestException,
    NotEnoughMessagesException,
    RequestPayloadTooLargeException,
    ResourceNotFoundException,
    ResponsePayloadTooLargeException,
    UpdateNotAllowedException,
)

from edgeml.twin.device.streammanager import StreamManagerServer

ClientFactory = Callable[..., StreamManagerClient]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[StreamManagerServer]:
    with StreamManagerServer(
        tmp_path / "store", max_request_bytes=64 * 1024, max_response_bytes=256 * 1024
    ) as srv:
        yield srv


@pytest.fixture()
def connect(server: StreamManagerServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ClientFactory]:
    """Makes clients the way a component does: port and token from the environment."""
    clients: list[StreamManagerClient] = []
    for key, value in server.client_env().items():
        monkeypatch.setenv(key, value)

    def make(**kwargs: object) -> StreamManagerClient:
        client = StreamManagerClient(**kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def definition(name: str, **kwargs: object) -> MessageStreamDefinition:
    kwargs.setdefault("strategy_on_full", StrategyOnFull.RejectNewData)
    return MessageStreamDefinition(name=name, **kwargs)


def test_append_then_read_with_options(connect: ClientFactory) -> None:
    client = connect()
    client.create_message_stream(definition("results"))
    sequence_numbers = [client.append_message("results", f"m{i}".encode()) for i in range(10)]
    assert sequence_numbers == list(range(10))

    one = client.read_messages("results")
    assert [(m.sequence_number, m.payload, m.stream_name) for m in one] == [(0, b"m0", "results")]
    assert one[0].ingest_time == pytest.approx(time.time() * 1000, abs=60_000)

    some = client.read_messages(
        "results",
        ReadMessagesOptions(desired_start_sequence_number=3, min_message_count=2, max_message_count=4),
    )
    assert [m.payload for m in some] == [b"m3", b"m4", b"m5", b"m6"]

    tail = client.read_messages(
        "results",
        ReadMessagesOptions(desired_start_sequence_number=8, min_message_count=1, max_message_count=50),
    )
    assert [m.sequence_number for m in tail] == [8, 9]


def test_read_without_enough_messages(connect: ClientFactory) -> None:
    client = connect()
    client.create_message_stream(definition("few"))
    client.append_message("few", b"only")
    with pytest.raises(NotEnoughMessagesException):
        client.read_messages("few", ReadMessagesOptions(desired_start_sequence_number=1))
    started = time.monotonic()
    with pytest.raises(NotEnoughMessagesException):
        client.read_messages(
            "few", ReadMessagesOptions(min_message_count=2, max_message_count=2, read_timeout_millis=300)
        )
    assert time.monotonic() - started >= 0.29


def test_blocking_read_returns_when_another_client_appends(connect: ClientFactory) -> None:
    reader, writer = connect(), connect()
    reader.create_message_stream(definition("live"))
    result: list[list[bytes]] = []

    def read() -> None:
        messages = reader.read_messages(
            "live", ReadMessagesOptions(min_message_count=3, max_message_count=3, read_timeout_millis=10_000)
        )
        result.append([m.payload for m in messages])

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.2)
    for payload in (b"a", b"b", b"c"):
        writer.append_message("live", payload)
    thread.join(timeout=10)
    assert result == [[b"a", b"b", b"c"]]


def test_stream_lifecycle(connect: ClientFactory) -> None:
    client = connect()
    client.create_message_stream(definition("one", max_size=4096))
    client.create_message_stream(definition("two", persistence=Persistence.Memory))
    assert sorted(client.list_streams()) == ["one", "two"]
    with pytest.raises(InvalidRequestException):
        client.create_message_stream(definition("one"))

    client.update_message_stream(definition("one", max_size=8192))
    info = client.describe_message_stream("one")
    assert info.definition.max_size == 8192
    assert info.definition.persistence == Persistence.File
    with pytest.raises(UpdateNotAllowedException):
        client.update_message_stream(definition("one", persistence=Persistence.Memory))

    client.append_message("one", b"12345")
    status = client.describe_message_stream("one").storage_status
    assert (status.oldest_sequence_number, status.newest_sequence_number) == (0, 0)
    assert status.total_bytes > 5

    client.delete_message_stream("one")
    assert client.list_streams() == ["two"]
    calls: list[Callable[[], object]] = [
        lambda: client.describe_message_stream("one"),
        lambda: client.append_message("one", b"x"),
        lambda: client.read_messages("one"),
        lambda: client.delete_message_stream("one"),
    ]
    for call in calls:
        with pytest.raises(ResourceNotFoundException):
            call()


def test_wrong_or_missing_token_is_refused(
    server: StreamManagerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM_MANAGER_SERVER_PORT", str(server.port))
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "not-the-token")
    with pytest.raises(ConnectFailedException):
        StreamManagerClient()
    monkeypatch.delenv("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    with pytest.raises(ConnectFailedException):
        StreamManagerClient()
    reply = raw_connect(server, token="wrong")
    assert reply["status"] == ResponseStatusCode.Unauthorized.value


def test_oversized_append_is_answered_and_the_connection_keeps_working(connect: ClientFactory) -> None:
    client, bystander = connect(), connect()
    client.create_message_stream(definition("big"))
    with pytest.raises(RequestPayloadTooLargeException):
        client.append_message("big", b"x" * 200_000)
    assert client.append_message("big", b"small") == 0
    assert bystander.append_message("big", b"also") == 1


def test_read_larger_than_one_response(connect: ClientFactory) -> None:
    client = connect()
    client.create_message_stream(definition("wide"))
    for _ in range(8):
        client.append_message("wide", b"x" * 60_000)
    partial = client.read_messages("wide", ReadMessagesOptions(min_message_count=1, max_message_count=8))
    assert 1 <= len(partial) < 8
    with pytest.raises(ResponsePayloadTooLargeException):
        client.read_messages("wide", ReadMessagesOptions(min_message_count=8, max_message_count=8))


def test_malformed_frames_get_protocol_errors_while_a_client_keeps_working(
    server: StreamManagerServer, connect: ClientFactory
) -> None:
    client = connect()
    client.create_message_stream(definition("steady"))
    sock = raw_session(server)
    try:
        # Not CBOR at all: InvalidRequest on the operation's response, connection still usable.
        send_frame(sock, Operation.AppendMessage.value, b"\xff\x00garbage")
        operation, reply = read_reply(sock)
        assert operation == Operation.AppendMessageResponse.value
        assert reply["status"] == ResponseStatusCode.InvalidRequest.value
        client.append_message("steady", b"between")

        # CBOR that fails the SDK's validation names the request id back.
        send_frame(sock, Operation.AppendMessage.value, cbor2.dumps({"requestId": "r-1", "name": "steady"}))
        operation, reply = read_reply(sock)
        assert (reply["requestId"], reply["status"]) == ("r-1", ResponseStatusCode.InvalidRequest.value)

        # An operation code the protocol does not have.
        send_frame(sock, 99, cbor2.dumps({"requestId": "r-2"}))
        operation, reply = read_reply(sock)
        assert operation == Operation.UnknownOperationError.value
        assert (reply["requestId"], reply["status"]) == ("r-2", ResponseStatusCode.UnknownOperation.value)

        # A frame length that cannot be: answered once, then the connection is closed.
        sock.sendall(struct.pack(">i", -5) + b"\x04")
        operation, reply = read_reply(sock)
        assert reply["status"] == ResponseStatusCode.InvalidRequest.value
        assert sock.recv(1) == b""
    finally:
        sock.close()
    assert client.append_message("steady", b"after") == 1
    assert [m.payload for m in client.read_messages("steady", ReadMessagesOptions(max_message_count=5))] == [
        b"between",
        b"after",
    ]


def test_appends_on_the_fast_path_answer_errors_and_pipelined_requests(
    server: StreamManagerServer, connect: ClientFactory
) -> None:
    """SDK-shaped appends sent raw: errors keep the request id, a burst is all answered."""
    client = connect()
    client.create_message_stream(definition("fast"))
    sock = raw_session(server)
    try:
        # SDK key order, but the payload is a text string: InvalidRequest naming the request.
        send_frame(
            sock, Operation.AppendMessage.value, b"\xa3\x69requestId\x63r-5\x64name\x64fast\x67payload\x61x"
        )
        operation, reply = read_reply(sock)
        assert operation == Operation.AppendMessageResponse.value
        assert (reply["requestId"], reply["status"]) == ("r-5", ResponseStatusCode.InvalidRequest.value)

        # A stream that does not exist.
        send_frame(sock, Operation.AppendMessage.value, append_payload("r-6", "missing", b"x"))
        operation, reply = read_reply(sock)
        assert (reply["requestId"], reply["status"]) == ("r-6", ResponseStatusCode.ResourceNotFound.value)

        # Twenty appends in one write (one recv on the server): every one answered, in sequence.
        burst = b"".join(
            struct.pack(">i", len(payload) + 1) + bytes([Operation.AppendMessage.value]) + payload
            for payload in (append_payload(f"b-{n}", "fast", b"m%d" % n) for n in range(20))
        )
        sock.sendall(burst)
        replies = [read_reply(sock)[1] for _ in range(20)]
        assert sorted((r["sequenceNumber"], r["requestId"]) for r in replies) == [
            (n, f"b-{n}") for n in range(20)
        ]
        assert all(r["status"] == ResponseStatusCode.Success.value for r in replies)
    finally:
        sock.close()
    messages = client.read_messages("fast", ReadMessagesOptions(max_message_count=50))
    assert [m.payload for m in messages] == [b"m%d" % n for n in range(20)]
    assert client.append_message("fast", b"after") == 20


def append_payload(request_id: str, stream: str, data: bytes) -> bytes:
    return cbor2.dumps({"requestId": request_id, "name": stream, "payload": data})


# -- raw socket helpers -------------------------------------------------------------------------------


def send_frame(sock: socket.socket, operation: int, payload: bytes) -> None:
    sock.sendall(struct.pack(">i", len(payload) + 1) + bytes([operation]) + payload)


def read_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def read_reply(sock: socket.socket) -> tuple[int, dict[str, object]]:
    (length,) = struct.unpack(">i", read_exactly(sock, 4))
    operation = read_exactly(sock, 1)[0]
    return operation, cbor2.loads(read_exactly(sock, length - 1))


def raw_connect(server: StreamManagerServer, token: str) -> dict[str, object]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        return _handshake(sock, token)
    finally:
        sock.close()


def _handshake(sock: socket.socket, token: str) -> dict[str, object]:
    request = {"requestId": "c-1", "protocolVersion": "1.1.0", "authToken": token}
    sock.sendall(b"\x01")
    send_frame(sock, Operation.Connect.value, cbor2.dumps(request))
    assert read_exactly(sock, 1) == b"\x01"
    operation, reply = read_reply(sock)
    assert operation == Operation.ConnectResponse.value
    return reply


def raw_session(server: StreamManagerServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    reply = _handshake(sock, server.auth_token)
    assert reply["status"] == ResponseStatusCode.Success.value
    return sock
