"""Group commit: one fsync per stream per round covers every append written since the last round.

An append writes its record (os.write, so a kill -9 of the server cannot lose it), then registers a
callback with `after_durable(stream, callback)` (or awaits `durable(stream)`). A round takes every
stream written since the last one, fsyncs each once on a worker thread and then calls back all those
appends together, in the order they were written. While a round's fsync runs, the event loop keeps
reading and writing new appends, which the next round covers: under load the cost of an fsync is
shared by every append that arrived while the previous one ran. A round with a single append fsyncs
inline, since nothing else is waiting and the thread hop would only add latency.

Only streams with `flush_on_write` true go through rounds, as in real Stream Manager, which fsyncs on
write only with that setting; any other append is acknowledged (and readable) once written.

Callbacks instead of one future per append: the append hot path creates no task or future at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from edgeml.twin.device.streammanager.store.stream import MessageStream

DurableCallback = Callable[[OSError | None], None]
"""Called once the append is durable (None) or its fsync failed (the error)."""

_log = logging.getLogger(__name__)


def _fsync_and_close(descriptors: list[int]) -> None:
    try:
        for descriptor in descriptors:
            os.fsync(descriptor)
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _settle(waiter: asyncio.Future[None], error: OSError | None) -> None:
    if waiter.done():
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(error)


class GroupCommitter:
    """Batches fsyncs of concurrently pending appends; lives on the server's event loop.

    `commit_delay_s`: how long a round may wait for more appends before its fsync, and only while some
    appender that was active in the last `active_window_s` has no append in the round yet (so a lone
    client never waits). An fsync costs tens of µs of CPU whatever it covers, and on a busy device
    the appenders come back within a millisecond or two, so waiting briefly for them to join a round
    saves more CPU than the wait costs.
    """

    def __init__(self, commit_delay_s: float = 0.001, active_window_s: float = 0.05) -> None:
        self.commit_delay_s = commit_delay_s
        self.active_window_s = active_window_s
        self._dirty: dict[int, MessageStream] = {}
        self._callbacks: list[DurableCallback] = []
        self._round: asyncio.Task[None] | None = None
        self._last_seen: dict[object, float] = {}  # appender -> loop time of its latest append
        self._waiting: set[object] = set()  # appenders with an append in the next round
        self._expected = 0
        self._gate: asyncio.Future[None] | None = None
        self.rounds = 0
        self.appends = 0

    def after_durable(
        self, stream: MessageStream, callback: DurableCallback, appender: object = None
    ) -> None:
        """Calls `callback` once everything written to `stream` so far is on disk (and readable).

        `appender` identifies who appends (a connection): a round waits (up to `commit_delay_s`) for
        recently active appenders. Memory streams and streams without flush_on_write are called back at once.
        """
        if stream.limits.acknowledged_when_written:
            callback(None)
            return
        self._dirty[id(stream)] = stream
        self._callbacks.append(callback)
        self.appends += 1
        loop = asyncio.get_running_loop()
        if appender is not None:
            self._last_seen[appender] = loop.time()
            self._waiting.add(appender)
            gate = self._gate
            if gate is not None and len(self._waiting) >= self._expected and not gate.done():
                gate.set_result(None)
        if self._round is None:
            self._round = loop.create_task(self._run_rounds())

    async def durable(self, stream: MessageStream) -> None:
        """Returns once everything written to `stream` so far is on disk (and readable); at once for a stream
        that is not flush_on_write."""
        if stream.limits.acknowledged_when_written:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.after_durable(stream, lambda error: _settle(waiter, error))
        await waiter

    async def _run_rounds(self) -> None:
        try:
            while self._callbacks:
                await self._gather()
                await self._run_round()
        finally:
            self._round = None

    async def _gather(self) -> None:
        """Waits up to `commit_delay_s` for the appenders active lately that are not in the round yet."""
        if self.commit_delay_s <= 0 or not self._last_seen:
            return
        loop = asyncio.get_running_loop()
        horizon = loop.time() - self.active_window_s
        for appender in [key for key, seen in self._last_seen.items() if seen < horizon]:
            del self._last_seen[appender]
        self._expected = len(self._last_seen)
        if len(self._waiting) >= self._expected:
            return
        gate = self._gate = loop.create_future()
        timer = loop.call_later(self.commit_delay_s, _settle, gate, None)
        try:
            await gate
        finally:
            timer.cancel()
            self._gate = None

    async def _run_round(self) -> None:
        dirty, self._dirty = self._dirty, {}
        callbacks, self._callbacks = self._callbacks, []
        self._waiting = set()
        targets = [(stream, *stream.begin_sync()) for stream in dirty.values()]
        failure: OSError | None = None
        descriptors = [descriptor for _, _, descriptor in targets if descriptor is not None]
        try:
            if len(callbacks) > 1:
                await asyncio.to_thread(_fsync_and_close, descriptors)
            else:  # a lone append: a thread hop would only add latency
                _fsync_and_close(descriptors)
        except OSError as error:
            failure = error
        self.rounds += 1
        if failure is None:
            for stream, target, _ in targets:
                stream.end_sync(target)
        for callback in callbacks:
            try:
                callback(failure)
            except Exception:
                _log.exception("append acknowledgement failed")
