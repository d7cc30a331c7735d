"""Helpers for the IPC twin tests: real awsiotsdk clients on a real Unix socket, event collectors,
and accessControl blocks shaped like a recipe's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import awsiot.greengrasscoreipc
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

from edgeml.twin.device.ipc import IpcServer

EVENT_TIMEOUT_S = 5.0


def policy(*operations: str, resources: tuple[str, ...] = ("*",)) -> dict[str, Any]:
    return {"policyDescription": "test policy", "operations": list(operations), "resources": list(resources)}


def access_control(**services: dict[str, Any]) -> dict[str, Any]:
    """{"accessControl": {service: {policyId: policy}}}; keyword names use __ for dots."""
    return {"accessControl": {name.replace("__", "."): value for name, value in services.items()}}


PUBSUB_ALL = access_control(
    aws__greengrass__ipc__pubsub={
        "all": policy("aws.greengrass#PublishToTopic", "aws.greengrass#SubscribeToTopic")
    }
)


def connect(server: IpcServer, component: str) -> GreengrassCoreIPCClientV2:
    """An unmodified V2 client connected as `component` (through the env the component would get)."""
    env = server.component_env(component)
    connection = awsiot.greengrasscoreipc.connect(
        ipc_socket=env["AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"],
        authtoken=env["SVCUID"],
        timeout=5.0,
    )
    return GreengrassCoreIPCClientV2(client=connection)


@contextmanager
def ipc_client(server: IpcServer, component: str) -> Iterator[GreengrassCoreIPCClientV2]:
    """`connect`, closed on leaving."""
    client = connect(server, component)
    try:
        yield client
    finally:
        client.close()


class Events:
    """Collects stream events delivered on the client's executor threads."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = threading.Condition()

    def __call__(self, event: Any) -> None:
        with self._changed:
            self.items.append(event)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout_s: float = EVENT_TIMEOUT_S) -> list[Any]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.items) >= count, timeout_s)
            assert len(self.items) >= count, f"expected {count} events, got {self.items}"
            return list(self.items)
