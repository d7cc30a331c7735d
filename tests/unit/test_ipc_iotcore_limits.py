"""The IPC twin's IoT Core side enforces what a device meets: the nucleus's spool (2.5 MB of payload by
default, the oldest QoS 0 messages dropped to make room, then "Message spool is full", NUC
mqttclient/spool/Spool.java) and AWS IoT Core's 100 publishes per second per connection (AWS IoT Core
quotas, message broker). The cloud is a recording client at the boto3 boundary; the clock is fixed."""

from __future__ import annotations

import pytest

from edgeml.twin.device.ipc.errors import ServiceError
from edgeml.twin.device.ipc.iotcore import PUBLISH_RATE_PER_S, SPOOL_FULL, SPOOL_MAX_BYTES, IoTCoreBridge


class Cloud:
    def __init__(self, online: bool = True) -> None:
        self.online = online
        self.published: list[bytes] = []

    def publish(self, topic: str, qos: int, payload: bytes) -> None:
        if not self.online:
            raise ConnectionError("endpoint unreachable")
        self.published.append(payload)


def bridge(cloud: Cloud, now: list[float]) -> IoTCoreBridge:
    return IoTCoreBridge(True, None, lambda _url: cloud, clock=lambda: now[0])


def test_the_defaults_are_the_nucleus_spool_and_the_iot_core_rate() -> None:
    assert int(2.5 * 1024 * 1024) == SPOOL_MAX_BYTES
    assert PUBLISH_RATE_PER_S == 100


def test_offline_qos1_publishes_fill_the_spool_then_are_refused() -> None:
    cloud, now = Cloud(online=False), [0.0]
    twin = bridge(cloud, now)
    payload = b"x" * (100 * 1024)
    accepted = 0
    try:
        with pytest.raises(ServiceError, match=SPOOL_FULL):
            for _ in range(100):
                twin.record("c", "t", 1, payload, False)
                accepted += 1
    finally:
        twin.stop(1)
    assert accepted == SPOOL_MAX_BYTES // len(payload)  # 25 fit in 2.5 MB
    assert twin.refused == 1


def test_a_full_spool_drops_its_oldest_qos0_messages_first() -> None:
    cloud, now = Cloud(online=False), [0.0]
    twin = bridge(cloud, now)
    chunk = b"y" * (512 * 1024)
    try:
        head = twin.record("c", "t", 1, chunk, False)  # retried while offline: holds the spool
        zeros = [twin.record("c", "t", 0, chunk, False) for _ in range(4)]  # 2.5 MB with the head
        late = twin.record("c", "t", 1, chunk, False)  # no room: the oldest QoS 0 goes
        assert zeros[0].forwarded is False and zeros[0].error == "dropped from the full spool"
        assert twin.dropped_from_spool == 1 and twin.refused == 0
        assert all(zero.forwarded is None for zero in zeros[1:])  # still spooled
        assert twin.spooled_bytes <= SPOOL_MAX_BYTES
        assert not head.done.is_set() and not late.done.is_set()
    finally:
        twin.stop(1)


def test_publishes_beyond_100_a_second_are_throttled() -> None:
    cloud, now = Cloud(), [100.0]
    twin = bridge(cloud, now)
    try:
        entries = [twin.record("c", "t", 1, f"m{i}".encode(), False) for i in range(150)]
        assert twin.wait_forwarded(10)
        assert len(cloud.published) == 100 and twin.throttled == 50
        assert all(entry.throttled for entry in entries[100:])
        now[0] += 1.0  # a second later the connection may publish again
        later = twin.record("c", "t", 1, b"later", False)
        assert later.done.wait(5) and later.forwarded is True
    finally:
        twin.stop(1)


