"""One operation stream on one client connection: the initial response, streaming events after it,
modelled errors, and what to undo when either side terminates the stream."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from edgeml.twin.device.ipc.errors import ModelledServiceError
from edgeml.twin.device.ipc.rpc import encode_application

_log = logging.getLogger(__name__)


class FrameSink(Protocol):
    """Where a stream's frames go (the connection's writer)."""

    def send_frame(self, frame: bytes) -> None: ...

    @property
    def is_open(self) -> bool: ...


def encode_json(payload: dict[str, Any]) -> bytes:
    """JSON body of a shape (compact; the client parses with json.loads)."""
    return json.dumps(payload, separators=(",", ":")).encode()


class OperationStream:
    """Server side of one continuation. Events sent before the initial response wait for it."""

    def __init__(self, sink: FrameSink, stream_id: int, operation: str, component: str) -> None:
        self.sink = sink
        self.stream_id = stream_id
        self.operation = operation
        self.component = component
        self.closed = False
        self._responded = False
        self._held_events: list[bytes] = []
        self._on_close: list[Callable[[], None]] = []

    def on_close(self, callback: Callable[[], None]) -> None:
        """Runs `callback` once when the stream ends (client terminate, error, connection loss)."""
        self._on_close.append(callback)

    def respond(self, model_name: str, payload: dict[str, Any], *, terminate: bool) -> None:
        """Sends the operation's response; `terminate` for operations without a response stream."""
        if self.closed:
            return
        self.sink.send_frame(
            encode_application(self.stream_id, model_name, encode_json(payload), terminate=terminate)
        )
        self._responded = True
        for frame in self._held_events:
            self.sink.send_frame(frame)
        self._held_events.clear()
        if terminate:
            self.finish()

    def fail(self, error: ModelledServiceError) -> None:
        """Sends the modelled error and terminates the stream."""
        if self.closed:
            return
        frame = encode_application(
            self.stream_id, error.model_name, encode_json(error.payload()), error=True, terminate=True
        )
        self.sink.send_frame(frame)
        self.finish()

    def send_event(self, model_name: str, payload: bytes) -> bool:
        """Sends one streaming event whose JSON body is already encoded; False once the stream is gone."""
        if self.closed or not self.sink.is_open:
            return False
        frame = encode_application(self.stream_id, model_name, payload)
        if self._responded:
            self.sink.send_frame(frame)
        else:
            self._held_events.append(frame)
        return True

    def finish(self) -> None:
        """Marks the stream ended and runs its close callbacks (idempotent)."""
        if self.closed:
            return
        self.closed = True
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a broken callback must not take the connection down
                _log.exception("close callback of stream %d failed", self.stream_id)
