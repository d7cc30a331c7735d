"""Result sinks: the interface, and the bounded queue + worker thread keeping them off the inference path."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from abc import ABC, abstractmethod

_log = logging.getLogger(__name__)


class Sink(ABC):
    """Delivers one encoded message (a result, a health report) to one destination."""

    name: str = "sink"

    @abstractmethod
    def send(self, payload: bytes) -> None:
        """Delivers `payload`; may block and may raise (the worker counts the failure)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases the destination's resources."""


class AsyncSink:
    """Runs `sink.send` on a thread behind a bounded queue; `offer` never blocks (full: drop the oldest)."""

    def __init__(self, sink: Sink, max_queue: int = 1024) -> None:
        self.sink = sink
        self.name = sink.name
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_queue)
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._work, name=f"sink-{sink.name}", daemon=True)
        self._thread.start()

    def offer(self, payload: bytes) -> bool:
        """Queues `payload`; when the queue is full the oldest queued message is dropped (False)."""
        try:
            self._queue.put_nowait(payload)
            return True
        except queue.Full:
            pass
        with contextlib.suppress(queue.Empty):
            self._queue.get_nowait()
            self._queue.task_done()
        self.dropped += 1
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(payload)
        return False

    def _work(self) -> None:
        while True:
            payload = self._queue.get()
            try:
                if payload is None:
                    return
                self.sink.send(payload)
                self.sent += 1
            except Exception as error:
                self.failed += 1
                _log.warning("sink %s failed: %s", self.name, error)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until everything queued so far was handled (or `timeout` passed)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self.sink.close()

    def stats(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": self._queue.qsize(),
        }
