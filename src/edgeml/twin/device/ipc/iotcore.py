"""The IoT Core side of the device: PublishToIoTCore goes to an MQTT log and, through boto3
`iot-data` `publish`, to the cloud twin; `publish_from_cloud` feeds SubscribeToIoTCore streams.

Forwarding runs on one worker thread in publish order, like the nucleus' spooler, so the client's
call never waits on the cloud. When the endpoint is unreachable the client still gets its
PublishToIoTCoreResponse; a QoS 0 message is then dropped (the nucleus' default, keepQos0WhenOffline
false) and a QoS 1 message stays spooled, retried with backoff ahead of everything after it, until the
cloud answers or the server stops (see docs/ipc-twin.md).
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeml.twin.device.ipc.streams import OperationStream, encode_json
from edgeml.twin.device.ipc.topics import mqtt_topic_matches

IOT_CORE_MESSAGE = "aws.greengrass#IoTCoreMessage"
FORWARD_CONNECT_TIMEOUT_S = 2.0
FORWARD_READ_TIMEOUT_S = 5.0
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
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
    ) -> None:
        self.forward = forward
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

    def record(self, component: str, topic: str, qos: int, payload: bytes, retain: bool) -> MqttLogEntry:
        """Logs one publish and queues it for the cloud."""
        entry = MqttLogEntry(topic, qos, payload, time.time(), component, retain)
        with self._log_lock:
            self._log.append(entry)
        if not self.forward:
            entry.done.set()
            return entry
        if self._worker is None:
            self._worker = threading.Thread(target=self._forward_loop, name="ipc-twin-iot-data", daemon=True)
            self._worker.start()
        self._queue.put(entry)
        return entry

    def _forward_loop(self) -> None:
        client: Any = None
        while (entry := self._queue.get()) is not None:
            if self._stopping.is_set():  # stopping: not attempted
                entry.forwarded = False
                entry.done.set()
                continue
            backoff = RETRY_FIRST_S
            while True:
                entry.attempts += 1
                try:
                    if client is None:
                        client = self._client_factory(self.endpoint_url)
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
            entry.done.set()
        # stopped: whatever is still spooled was not delivered
        while not self._queue.empty():
            pending = self._queue.get()
            if pending is not None:
                pending.forwarded = False
                pending.done.set()

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
