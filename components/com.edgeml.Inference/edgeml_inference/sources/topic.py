"""IPC topic source: SubscribeToTopic; each message (image bytes or a JSON tensor) is one request."""

from __future__ import annotations

from collections.abc import Callable

from edgeml_inference.ipc import IpcClient
from edgeml_inference.sources.base import Source, Submit


class TopicSource(Source):
    """Results of these requests go to the result sinks like any other (ResultsTopic, streams)."""

    name = "topic"

    def __init__(self, ipc: IpcClient, topic: str, submit: Submit) -> None:
        self.ipc = ipc
        self.topic = topic
        self.submit = submit
        self._unsubscribe: Callable[[], None] | None = None
        self.received = 0

    def start(self) -> None:
        self._unsubscribe = self.ipc.subscribe_to_topic(self.topic, self._on_message)

    def _on_message(self, payload: bytes) -> None:
        self.received += 1
        self.submit(payload, f"topic:{self.topic}")

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
