"""Cloud sink: IPC PublishToIoTCore, results batched by count and time.

AWS IoT Core accepts at most 100 publishes per second on one MQTT connection (all of a core device's
components share the nucleus's connection) and 128 KB per message, and the nucleus spools only 2.5 MB while
offline (spooler maxSizeInBytes). One message per result breaks the first limit at any camera rate, so
results go out as one message of up to IoTCoreBatchSize results, or whatever has waited IoTCoreBatchMs,
whichever comes first, never over 128 KB:

    {"kind": "results", "count": 3, "results": [<result>, <result>, <result>]}

IoTCoreBatchSize 1 publishes each result as it is, as before (QoS 1 by default: the nucleus spools it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edgeml_inference.ipc import IpcClient
from edgeml_inference.sinks.base import Sink

_log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 128 * 1024  # AWS IoT Core message broker: payload size
_ENVELOPE_HEAD = b'{"kind":"results","count":'
_ENVELOPE_OVERHEAD = len(_ENVELOPE_HEAD) + len(b',"results":[]}') + 8


def batch_message(payloads: list[bytes]) -> bytes:
    """The IoT Core message of a batch of encoded results."""
    return b"".join(
        (_ENVELOPE_HEAD, str(len(payloads)).encode(), b',"results":[', b",".join(payloads), b"]}")
    )


class IoTCoreSink(Sink):
    """Publishes to the MQTT topic and QoS `route()` returns now, in batches `batching()` = (size, seconds)
    sets now (live configuration)."""

    name = "iotcore"

    def __init__(
        self,
        ipc: IpcClient,
        route: Callable[[], tuple[str, int]],
        batching: Callable[[], tuple[int, float]] = lambda: (1, 0.0),
    ) -> None:
        self.ipc = ipc
        self.route = route
        self.batching = batching
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._oldest = 0.0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._timer: threading.Thread | None = None
        self.messages = 0  # IoT Core publishes made
        self.lost = 0  # results in publishes the nucleus refused (e.g. its spool full)

    def send(self, payload: bytes) -> None:
        size, _ = self.batching()
        if size <= 1:
            with self._lock:
                ready = self._take()  # what waited before batching was turned off
            self._publish(ready)
            self._publish([payload], plain=True)
            return
        with self._lock:
            over = self._pending_bytes + len(payload) + 1 + _ENVELOPE_OVERHEAD > MAX_MESSAGE_BYTES
            full = self._take() if self._pending and over else []
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(payload)
            self._pending_bytes += len(payload) + 1
            ready = self._take() if len(self._pending) >= size else []
            self._ensure_timer()
        self._publish(full)
        self._publish(ready)

    def send_many(self, payloads: list[bytes]) -> list[Exception]:
        """`send` for a batch's results under one lock: the same IoT Core messages, built per batch."""
        size, _ = self.batching()
        if size <= 1:
            return super().send_many(payloads)
        groups: list[list[bytes]] = []
        with self._lock:
            for payload in payloads:
                over = self._pending_bytes + len(payload) + 1 + _ENVELOPE_OVERHEAD > MAX_MESSAGE_BYTES
                if self._pending and over:
                    groups.append(self._take())
                if not self._pending:
                    self._oldest = time.monotonic()
                self._pending.append(payload)
                self._pending_bytes += len(payload) + 1
                if len(self._pending) >= size:
                    groups.append(self._take())
            self._ensure_timer()
        failures: list[Exception] = []
        for group in groups:
            try:
                self._publish(group)
            except Exception as error:
                failures.append(error)
        return failures

    def _take(self) -> list[bytes]:
        taken, self._pending, self._pending_bytes = self._pending, [], 0
        return taken

    def _ensure_timer(self) -> None:
        if self._timer is None:
            self._timer = threading.Thread(target=self._time_loop, name="sink-iotcore-batch", daemon=True)
            self._timer.start()

    def _time_loop(self) -> None:
        while not self._closing.is_set():
            _, wait_s = self.batching()
            wait_s = max(wait_s, 0.01)
            with self._lock:
                due = self._pending and time.monotonic() - self._oldest >= wait_s
                ready = self._take() if due else []
                left = wait_s - (time.monotonic() - self._oldest) if self._pending else wait_s
            try:
                self._publish(ready)
            except Exception as error:
                _log.warning("IoT Core batch of %d results not published: %s", len(ready), error)
            self._closing.wait(max(left, 0.005))

    def _publish(self, payloads: list[bytes], plain: bool = False) -> None:
        if not payloads:
            return
        topic, qos = self.route()
        if not topic:
            return
        message = payloads[0] if plain else batch_message(payloads)
        try:
            self.ipc.publish_to_iot_core(topic, message, qos)
        except Exception:
            self.lost += len(payloads)
            raise
        self.messages += 1

    def close(self) -> None:
        """Publishes what waits, then stops the timer."""
        self._closing.set()
        if self._timer is not None:
            self._timer.join(5)
        with self._lock:
            ready = self._take()
        try:
            self._publish(ready)
        except Exception as error:
            _log.warning("last IoT Core batch of %d results not published: %s", len(ready), error)
