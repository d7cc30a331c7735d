"""Cloud sink: IPC PublishToIoTCore (QoS 1 by default: the nucleus spools it while offline)."""

from __future__ import annotations

from collections.abc import Callable

from edgeml_inference.ipc import IpcClient
from edgeml_inference.sinks.base import Sink


class IoTCoreSink(Sink):
    """Publishes each payload to the MQTT topic and QoS `route()` returns now (live configuration)."""

    name = "iotcore"

    def __init__(self, ipc: IpcClient, route: Callable[[], tuple[str, int]]) -> None:
        self.ipc = ipc
        self.route = route

    def send(self, payload: bytes) -> None:
        topic, qos = self.route()
        if topic:
            self.ipc.publish_to_iot_core(topic, payload, qos)
