"""Greengrass IPC twin: publish round trip and request latency with the unmodified awsiotsdk client.

The server runs in its own process (as the nucleus does on a device); the clients are
`GreengrassCoreIPCClientV2` instances in this process. One message in flight at a time.

- round trip: PublishToTopic from component A until component B's subscription handler has it,
  with the client's default executor (handler on a worker thread) and with executor=None (handler on
  the client's network thread).
- request: one `publish_to_topic` call (to a topic nobody subscribes to), request to response.
- raw socket: the same PublishToTopic request over a plain blocking socket with the twin's own
  framing, no awsiotsdk: the server and kernel share of the request latency. The difference to
  the request row is the client library's own overhead.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import awsiot.greengrasscoreipc
import numpy as np
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage
from rich.console import Console
from rich.table import Table

from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.device.ipc.framing import PRELUDE_BYTES, decode_message, encode_message
from edgeml.twin.device.ipc.headers import Header
from edgeml.twin.device.ipc.rpc import MessageType, parse_rpc

MESSAGES = 2_000
WARMUP = 200
PAYLOAD = b"x" * 256
TARGET_P99_MS = 2.0
PUBLISHER, SUBSCRIBER = "bench.Publisher", "bench.Subscriber"
ACCESS = {
    "accessControl": {
        "aws.greengrass.ipc.pubsub": {
            "bench": {"policyDescription": "bench", "operations": ["*"], "resources": ["*"]},
        }
    }
}


@dataclass(frozen=True)
class Latencies:
    """One measured mode: per-message latencies in milliseconds."""

    label: str
    samples_ms: np.ndarray[Any, np.dtype[np.float64]]

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples_ms, q))


def _serve(socket_path: str, control: Connection) -> None:
    """Child process: the IPC server with two components; runs until told to stop."""
    with IpcServer(socket_path, forward_to_iot_core=False) as server:
        control.send({name: server.register_component(name, ACCESS) for name in (PUBLISHER, SUBSCRIBER)})
        control.recv()


def _client(socket_path: str, token: str, executor: bool = True) -> GreengrassCoreIPCClientV2:
    connection = awsiot.greengrasscoreipc.connect(ipc_socket=socket_path, authtoken=token, timeout=10.0)
    if executor:
        return GreengrassCoreIPCClientV2(client=connection)
    return GreengrassCoreIPCClientV2(client=connection, executor=None)


def _measure(label: str, one: Callable[[int], None]) -> Latencies:
    for index in range(WARMUP):
        one(index)
    samples = np.empty(MESSAGES)
    for index in range(MESSAGES):
        started = time.perf_counter()
        one(index)
        samples[index] = (time.perf_counter() - started) * 1000
    return Latencies(label, samples)


def round_trip(socket_path: str, tokens: dict[str, str], executor: bool) -> Latencies:
    publisher = _client(socket_path, tokens[PUBLISHER])
    subscriber = _client(socket_path, tokens[SUBSCRIBER], executor=executor)
    arrived = threading.Event()
    subscriber.subscribe_to_topic(topic="bench/rt", on_stream_event=lambda event: arrived.set())
    message = PublishMessage(binary_message=BinaryMessage(message=PAYLOAD))

    def one(_: int) -> None:
        arrived.clear()
        publisher.publish_to_topic(topic="bench/rt", publish_message=message)
        if not arrived.wait(5.0):
            raise RuntimeError("subscriber did not receive the message within 5 s")

    try:
        where = "worker thread (default executor)" if executor else "network thread (executor=None)"
        return _measure(f"round trip A -> B, handler on {where}", one)
    finally:
        publisher.close()
        subscriber.close()


def request(socket_path: str, tokens: dict[str, str]) -> Latencies:
    client = _client(socket_path, tokens[PUBLISHER])
    message = PublishMessage(binary_message=BinaryMessage(message=PAYLOAD))
    try:
        return _measure(
            "publish_to_topic call (awsiotsdk)",
            lambda _: client.publish_to_topic(topic="bench/nobody", publish_message=message),
        )
    finally:
        client.close()


def _recv_frame(sock: socket.socket) -> bytes:
    head = sock.recv(PRELUDE_BYTES, socket.MSG_WAITALL)
    return head + sock.recv(int.from_bytes(head[:4], "big") - PRELUDE_BYTES, socket.MSG_WAITALL)


def _routing(kind: MessageType, stream_id: int) -> list[Header]:
    return [
        Header.int32(":message-type", kind),
        Header.int32(":message-flags", 0),
        Header.int32(":stream-id", stream_id),
    ]


def raw_request(socket_path: str, tokens: dict[str, str]) -> Latencies:
    body = json.dumps(
        {"topic": "bench/nobody", "publishMessage": {"binaryMessage": {"message": "eA==" * 64}}}
    ).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(socket_path)
        connect = [*_routing(MessageType.CONNECT, 0), Header.string(":version", "0.1.0")]
        sock.sendall(encode_message(connect, json.dumps({"authToken": tokens[PUBLISHER]}).encode()))
        if parse_rpc(decode_message(_recv_frame(sock))).type != MessageType.CONNECT_ACK:
            raise RuntimeError("no CONNECT_ACK")

        stream_ids = itertools.count(1)  # each request is a new stream; ids only grow

        def one(_: int) -> None:
            headers = [
                *_routing(MessageType.APPLICATION_MESSAGE, next(stream_ids)),
                Header.string("operation", "aws.greengrass#PublishToTopic"),
                Header.string(":content-type", "application/json"),
                Header.string("service-model-type", "aws.greengrass#PublishToTopicRequest"),
            ]
            sock.sendall(encode_message(headers, body))
            _recv_frame(sock)

        return _measure("PublishToTopic over a raw socket (no awsiotsdk)", one)


def main() -> None:
    console = Console()
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="ggb-", dir="/tmp") as directory:
        socket_path = str(Path(directory) / "ipc.socket")
        parent, child = context.Pipe()
        server = context.Process(target=_serve, args=(socket_path, child), daemon=True)
        server.start()
        child.close()  # so a crashed server shows up as EOF here instead of a hang
        try:
            tokens: dict[str, str] = parent.recv()
            rows = [
                round_trip(socket_path, tokens, executor=True),
                round_trip(socket_path, tokens, executor=False),
                request(socket_path, tokens),
                raw_request(socket_path, tokens),
            ]
        finally:
            parent.send("stop")
            server.join(10)
            if server.is_alive():
                server.terminate()
    table = Table(title=f"Greengrass IPC twin: {MESSAGES} messages of {len(PAYLOAD)} B, one in flight")
    for column in ("mode", "p50 ms", "p99 ms", "max ms", f"p99 < {TARGET_P99_MS:g} ms"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for row in rows:
        p99 = row.percentile(99)
        table.add_row(
            row.label,
            f"{row.percentile(50):.3f}",
            f"{p99:.3f}",
            f"{float(row.samples_ms.max()):.3f}",
            "[green]met[/green]" if p99 < TARGET_P99_MS else "[red]missed[/red]",
        )
    console.print(table)
    sdk, raw = rows[2], rows[3]
    share = 1 - raw.percentile(50) / sdk.percentile(50)
    console.print(
        f"awsiotsdk's own share of a request (p50): {share:.0%} "
        f"({sdk.percentile(50):.3f} ms with the SDK vs {raw.percentile(50):.3f} ms on a raw socket)."
    )


if __name__ == "__main__":
    main()
