"""The IoT Core side of the device: PublishToIoTCore goes to an MQTT log and, through boto3
`iot-data` `publish`, to the cloud twin; `publish_from_cloud` feeds SubscribeToIoTCore streams.

Forwarding runs on one worker thread in publish order, like the nucleus' spooler, so the client's
call never waits on the cloud. When the endpoint is unreachable the client still gets its
PublishToIoTCoreResponse; a QoS 0 message is then dropped (the nucleus' default, keepQos0WhenOffline
false) and a QoS 1 message stays spooled, retried with backoff ahead of everything after it, until the
cloud answers or the server stops (see docs/ipc-twin.md).

The spool holds at most `spool_max_bytes` of payload (the nucleus' default spooler maxSizeInBytes, 2.5 MB;
NUC mqttclient/spool/Spool.java queueCapacityCheck): a publish that does not fit first drops the oldest
spooled QoS 0 messages, and if it still does not fit it is refused with "Message spool is full. Message
could not be added." (a ServiceError to the client). AWS IoT Core accepts at most `publish_rate_per_s`
publishes per second on one connection (100, not adjustable; AWS IoT Core quotas, message broker): the
twin drops (as throttled) any forwarded publish beyond that in a sliding second.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeml.twin.device.ipc.errors import ServiceError
from edgeml.twin.device.ipc.streams import OperationStream, encode_json
from edgeml.twin.device.ipc.topics import mqtt_topic_matches

IOT_CORE_MESSAGE = "aws.greengrass#IoTCoreMessage"
FORWARD_CONNECT_TIMEOUT_S = 2.0
FORWARD_READ_TIMEOUT_S = 5.0
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
SPOOL_MAX_BYTES = int(2.5 * 1024 * 1024)  # Spool.DEFAULT_SPOOL_MAX_MESSAGE_QUEUE_SIZE_IN_BYTES
PUBLISH_RATE_PER_S = 100  # AWS IoT Core: publish requests per second per connection
SPOOL_FULL = "Message spool is full. Message could not be added."
_log = logging.getLogger(__name__)


@dataclass
class MqttLogEntry:
    """One PublishToIoTCore as the core device saw it, and what became of its forwarding."""

    topic: str
    qos: int
    payload: bytes
    time: float
    component: str
    retain: bool = False
    forwarded: bool | None = None  # None while spooled
    throttled: bool = False  # refused by IoT Core's per-connection publish rate
    error: str | None = None  # the last failed attempt's error
    attempts: int = 0
    done: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)


@dataclass(eq=False, slots=True)
class CloudSubscription:
    """One SubscribeToIoTCore stream."""

    topic_filter: str
    qos: int
    component: str
    stream: OperationStream


def default_iot_data_client(endpoint_url: str | None) -> Any:
    """A boto3 `iot-data` client (AWS_ENDPOINT_URL applies), one attempt, short timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=FORWARD_CONNECT_TIMEOUT_S,
        read_timeout=FORWARD_READ_TIMEOUT_S,
    )
    return boto3.client("iot-data", endpoint_url=endpoint_url, config=config)


class IoTCoreBridge:
    """MQTT log, cloud forwarding and cloud-to-device delivery for one core device."""

    def __init__(
        self,
        forward: bool = True,
        endpoint_url: str | None = None,
        client_factory: Callable[[str | None], Any] = default_iot_data_client,
        *,
        spool_max_bytes: int = SPOOL_MAX_BYTES,
        publish_rate_per_s: int = PUBLISH_RATE_PER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.forward = forward
        self.spool_max_bytes = spool_max_bytes
        self.publish_rate_per_s = publish_rate_per_s
        self._clock = clock
        self._spooled: deque[MqttLogEntry] = deque()  # waiting to be forwarded, oldest first
        self._spooled_bytes = 0
        self._forward_times: deque[float] = deque()
        self.refused = 0  # publishes refused because the spool was full
        self.dropped_from_spool = 0  # QoS 0 messages dropped to make room
        self.throttled = 0
        self.endpoint_url = endpoint_url
        self._client_factory = client_factory
        self._log: list[MqttLogEntry] = []
        self._log_lock = threading.Lock()
        self._queue: queue.SimpleQueue[MqttLogEntry | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._subscriptions: list[CloudSubscription] = []

    @property
    def log(self) -> list[MqttLogEntry]:
        with self._log_lock:
            return list(self._log)

    @property
    def spooled_bytes(self) -> int:
        return self._spooled_bytes

    def _spool(self, entry: MqttLogEntry) -> None:
        """Spool.queueCapacityCheck: room by dropping the oldest QoS 0 messages, else ServiceError."""
        size = len(entry.payload)
        if size > self.spool_max_bytes:
            self.refused += 1
            raise ServiceError("Message is larger than the size of message spool.")
        self._spooled_bytes += size
        if self._spooled_bytes > self.spool_max_bytes:
            for old in [spooled for spooled in self._spooled if spooled.qos == 0]:
                if self._spooled_bytes <= self.spool_max_bytes:
                    break
                self._unspool(old)
                old.forwarded, old.error = False, "dropped from the full spool"
                old.done.set()
                self.dropped_from_spool += 1
        if self._spooled_bytes > self.spool_max_bytes:
            self._spooled_bytes -= size
            self.refused += 1
            raise ServiceError(SPOOL_FULL)
        self._spooled.append(entry)

    def _unspool(self, entry: MqttLogEntry) -> None:
        try:
            self._spooled.remove(entry)
        except ValueError:
            return
        self._spooled_bytes -= len(entry.payload)

    def _within_rate(self) -> bool:
        """Counts one forwarded publish against IoT Core's per-connection rate; False when over it."""
        now = self._clock()
        while self._forward_times and now - self._forward_times[0] >= 1.0:
            self._forward_times.popleft()
        if len(self._forward_times) >= self.publish_rate_per_s:
            return False
        self._forward_times.append(now)
        return True

    def record(self, component: str, topic: str, qos: int, payload: bytes, retain: bool) -> MqttLogEntry:
        """Logs one publish and queues it for the cloud; ServiceError when the spool has no room."""
        entry = MqttLogEntry(topic, qos, payload, time.time(), component, retain)
        if not self.forward:
            with self._log_lock:
                self._log.append(entry)
            entry.done.set()
            return entry
        with self._log_lock:
            self._spool(entry)
            self._log.append(entry)
        if self._worker is None:
            self._worker = threading.Thread(target=self._forward_loop, name="ipc-twin-iot-data", daemon=True)
            self._worker.start()
        self._queue.put(entry)
        return entry

    def _forward_loop(self) -> None:
        client: Any = None
        while (entry := self._queue.get()) is not None:
            if entry.done.is_set():  # dropped from the full spool meanwhile
                continue
            if self._stopping.is_set():  # stopping: not attempted
                entry.forwarded = False
                self._finish(entry)
                continue
            backoff = RETRY_FIRST_S
            while True:
                entry.attempts += 1
                try:
                    if client is None:
                        client = self._client_factory(self.endpoint_url)
                    if not self._within_rate():
                        entry.forwarded, entry.throttled = False, True
                        entry.error = f"throttled: over {self.publish_rate_per_s} publishes/s per connection"
                        self.throttled += 1
                        _log.warning("iot-data publish to %s %s", entry.topic, entry.error)
                        break
                    client.publish(topic=entry.topic, qos=entry.qos, payload=entry.payload)
                    entry.forwarded, entry.error = True, None
                    break
                except Exception as error:  # offline cloud
                    entry.error = f"{type(error).__name__}: {error}"
                    if entry.qos == 0:
                        entry.forwarded = False
                        _log.warning(
                            "iot-data publish to %s failed, QoS 0 dropped: %s", entry.topic, entry.error
                        )
                        break
                    # one warning per message; its retries while the cloud stays away are debug noise
                    log = _log.warning if entry.attempts == 1 else _log.debug
                    log("iot-data publish to %s failed, spooled: %s", entry.topic, entry.error)
                    if self._stopping.wait(backoff):
                        entry.forwarded = False
                        break
                    backoff = min(backoff * 2, RETRY_MAX_S)
            self._finish(entry)
        # stopped: whatever is still spooled was not delivered
        while not self._queue.empty():
            pending = self._queue.get()
            if pending is not None and not pending.done.is_set():
                pending.forwarded = False
                self._finish(pending)

    def _finish(self, entry: MqttLogEntry) -> None:
        with self._log_lock:
            self._unspool(entry)
        entry.done.set()

    def wait_forwarded(self, timeout_s: float) -> bool:
        """Waits until every logged publish has been forwarded or dropped; False on timeout (e.g. QoS 1
        messages still spooled while the cloud is unreachable)."""
        deadline = time.monotonic() + timeout_s
        return all(entry.done.wait(max(0.0, deadline - time.monotonic())) for entry in self.log)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._worker is not None:
            self._stopping.set()
            self._queue.put(None)
            self._worker.join(timeout_s)
            self._worker = None
            self._stopping.clear()

    def subscribe(self, subscription: CloudSubscription) -> Callable[[], None]:
        self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

        return unsubscribe

    def deliver_from_cloud(self, topic: str, payload: bytes) -> int:
        """Sends an MQTT message to every SubscribeToIoTCore stream whose filter matches `topic`."""
        event = encode_json(
            {"message": {"topicName": topic, "payload": base64.b64encode(payload).decode(), "retain": False}}
        )
        delivered = 0
        for sub in list(self._subscriptions):
            if mqtt_topic_matches(sub.topic_filter, topic) and sub.stream.send_event(IOT_CORE_MESSAGE, event):
                delivered += 1
        return delivered
