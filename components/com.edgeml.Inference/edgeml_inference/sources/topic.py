"""IPC topic source: SubscribeToTopic; each message (image bytes or a JSON tensor) is one request.

A message that arrives while the app stops (a restart for a model update: local pub/sub keeps nothing for a
component that is not running) gets the `shutting_down` answer through `on_refused`, so its sender can count
it and send it again, instead of it vanishing."""

from __future__ import annotations

from collections.abc import Callable

from edgeml_inference.answer import Answer
from edgeml_inference.ipc import IpcClient
from edgeml_inference.results import InferenceResult
from edgeml_inference.sources.base import Source, Submit


class TopicSource(Source):
    """Results of these requests go to the result sinks like any other (ResultsTopic, streams)."""

    name = "topic"

    def __init__(
        self,
        ipc: IpcClient,
        topic: str,
        submit: Submit,
        on_refused: Callable[[InferenceResult], None] = lambda result: None,
    ) -> None:
        self.ipc = ipc
        self.topic = topic
        self.submit = submit
        self.on_refused = on_refused
        self._unsubscribe: Callable[[], None] | None = None
        self.received = 0

    def start(self) -> None:
        self._unsubscribe = self.ipc.subscribe_to_topic(self.topic, self._on_message)

    def _on_message(self, payload: bytes) -> None:
        self.received += 1
        self.submit(payload, f"topic:{self.topic}").add_done_callback(self._check_refused)

    def _check_refused(self, future: Answer) -> None:
        result = future.result()
        if result.reason == "shutting_down":
            self.on_refused(result)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
