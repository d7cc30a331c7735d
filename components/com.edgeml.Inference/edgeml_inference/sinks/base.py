"""Result sinks: the interface, and the bounded queue + worker thread keeping them off the inference path."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Protocol

_log = logging.getLogger(__name__)


class Sink(ABC):
    """Delivers one encoded message (a result, a health report) to one destination."""

    name: str = "sink"

    @abstractmethod
    def send(self, payload: bytes) -> None:
        """Delivers `payload`; may block and may raise (the worker counts the failure)."""

    def send_many(self, payloads: list[bytes]) -> list[Exception]:
        """Delivers a batch's payloads in order; returns the failures (the worker counts and logs each).
        One by one through `send` unless a sink does better with the whole batch."""
        failures: list[Exception] = []
        for payload in payloads:
            try:
                self.send(payload)
            except Exception as error:
                failures.append(error)
        return failures

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases the destination's resources."""


class Encoded(Protocol):
    """Messages encoded only when a sink worker first needs their bytes (off the inference thread): the
    results of one batch, offered once and sent one by one."""

    def __len__(self) -> int: ...

    def payloads(self) -> list[bytes]: ...


Message = bytes | Encoded


def _weight(message: Message) -> int:
    """How many messages `message` sends: 1 for bytes, a batch's length."""
    return 1 if isinstance(message, bytes) else len(message)


class AsyncSink:
    """Runs `sink.send` on a thread behind a bounded buffer; `offer` never blocks (full: drop the oldest).

    `offer` appends to a deque and wakes the worker only when `wake_at` messages wait; otherwise the worker
    drains every `flush_s` seconds. So a batch of results costs the inference thread one append, not a thread
    switch. `max_queue`, `wake_at` and the counters are in messages sent (a batch of 32 results counts 32).
    A worker whose last drain found nothing sleeps until the next offer wakes it (an idle sink, such as the
    health or escalation sink most of the time, costs no timer wake-ups).

    `full_wait_s` (SinkFullWaitMs) > 0: an offer that finds the buffer full waits up to that long for the
    worker to make room before the oldest are dropped, so a destination slower than the model slows the
    inference down to its pace instead of losing results (back-pressure, bounded: a stuck destination
    costs each offer at most `full_wait_s`).
    """

    def __init__(
        self,
        sink: Sink,
        max_queue: int = 1024,
        flush_s: float = 0.02,
        wake_at: int = 256,
        full_wait_s: float = 0.0,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.max_queue = max_queue
        self.flush_s = flush_s
        self._wake_at = wake_at
        self.wake_at = min(wake_at, max_queue)
        self._pending: deque[Message] = deque()
        self._queued = 0  # messages to send in `_pending` (a batch counts its length)
        self._count_lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._closing = False
        self._sleeping = False  # the worker waits for an offer, not for the flush timer
        self.full_wait_s = full_wait_s
        self._room = threading.Condition()  # notified by the worker as it takes, while an offer waits
        self._waiting = False
        self.waited_s = 0.0  # time offers spent waiting for room (back-pressure), in seconds
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._work, name=f"sink-{sink.name}", daemon=True)
        self._thread.start()

    def offer(self, message: Message) -> bool:
        """Queues `message`; when the buffer is full the oldest waiting messages are dropped (False)."""
        pending = self._pending
        weight = _weight(message)
        if self.full_wait_s > 0 and self._queued + weight > self.max_queue >= weight:
            self._wait_for_room(weight)
        kept = True
        with self._count_lock:
            pending.append(message)
            self._queued += weight
            while self._queued > self.max_queue and pending:
                oldest = pending.popleft()
                lost = _weight(oldest)
                self._queued -= lost
                self.dropped += lost
                kept = False
            queued = self._queued
        if self._idle.is_set():  # a plain read; clear() takes the event's lock, per offer otherwise
            self._idle.clear()
        if self._sleeping or queued >= self.wake_at:
            self._wake.set()
        return kept

    def _wait_for_room(self, weight: int) -> None:
        """Blocks until `weight` more messages fit, the sink closes, or `full_wait_s` passed."""
        start = time.monotonic()
        deadline = start + self.full_wait_s
        self._wake.set()  # drain now, not at the next flush tick
        with self._room:
            self._waiting = True
            try:
                while self._queued + weight > self.max_queue and not self._closing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._room.wait(remaining)
            finally:
                self._waiting = False
        self.waited_s += time.monotonic() - start

    def resize(self, max_queue: int) -> None:
        """A new buffer size (SinkQueueSize applied live); if smaller, the next offer drops the oldest."""
        self.max_queue = max_queue
        self.wake_at = min(self._wake_at, max_queue)

    def _take(self) -> Message | None:
        with self._count_lock:
            if not self._pending:
                return None
            message = self._pending.popleft()
            self._queued -= _weight(message)
        if self._waiting:  # read after the count fell: an offer that checked before it is waiting by now
            with self._room:
                self._room.notify_all()
        return message

    def _work(self) -> None:
        while True:
            self._wake.wait(None if self._sleeping else self.flush_s)
            self._wake.clear()
            self._sleeping = False
            drained = 0
            while True:
                message = self._take()
                if message is None:
                    break
                drained += 1
                payloads = [message] if isinstance(message, bytes) else message.payloads()
                try:
                    failures = self.sink.send_many(payloads)
                except Exception as error:  # a sink's send_many is not to raise; if it does, all failed
                    failures = [error] * len(payloads)
                self.sent += len(payloads) - len(failures)
                self.failed += len(failures)
                for failure in failures:
                    _log.warning("sink %s failed: %s", self.name, failure)
            self._idle.set()
            if self._closing:
                return
            if not drained:
                # Flag first, then look again: an offer that appended before the flag was set is seen here,
                # one that appends after it sees the flag and wakes this thread.
                self._sleeping = True
                if self._pending:
                    self._sleeping = False

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until everything offered so far was handled (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._wake.set()
            if self._idle.wait(min(0.05, max(deadline - time.monotonic(), 0.0))) and not self._pending:
                return True
        return not self._pending

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._closing = True
        with self._room:
            self._room.notify_all()
        self._wake.set()
        self._thread.join(timeout)
        self.sink.close()

    def stats(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": self._queued,
            "waited_ms": int(self.waited_s * 1000),
        }
