"""Local pub/sub sink: IPC PublishToTopic."""

from __future__ import annotations

from collections.abc import Callable

from edgeml_inference.ipc import IpcClient
from edgeml_inference.sinks.base import Sink


class IpcTopicSink(Sink):
    """Publishes each payload as a binary message to the topic `topic()` returns now (live configuration)."""

    name = "ipc"

    def __init__(self, ipc: IpcClient, topic: Callable[[], str]) -> None:
        self.ipc = ipc
        self.topic = topic

    def send(self, payload: bytes) -> None:
        topic = self.topic()
        if topic:
            self.ipc.publish_to_topic(topic, payload)

    def send_many(self, payloads: list[bytes]) -> list[Exception]:
        """Each payload is its own message, as `send`; the topic is read once per batch."""
        topic = self.topic()
        if not topic:
            return []
        publish = self.ipc.publish_to_topic
        failures: list[Exception] = []
        for payload in payloads:
            try:
                publish(topic, payload)
            except Exception as error:
                failures.append(error)
        return failures
