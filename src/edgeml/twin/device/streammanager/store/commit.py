"""Group commit: one fsync per stream per round covers every append written since the last round.

An append writes its record (os.write, so a kill -9 of the server cannot lose it), then awaits
`durable(stream)`. A round takes every stream written since the last one, fsyncs each once on a worker
thread and then acknowledges all those appends together. While a round's fsync runs, the event loop
keeps reading and writing new appends, which the next round covers: under load the cost of an fsync
is shared by every append that arrived while the previous one ran. A round with a single append
fsyncs inline, since nothing else is waiting and the thread hop would only add latency.
"""

from __future__ import annotations

import asyncio
import os

from edgeml.twin.device.streammanager.store.stream import MessageStream


def _fsync_and_close(descriptors: list[int]) -> None:
    try:
        for descriptor in descriptors:
            os.fsync(descriptor)
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


class GroupCommitter:
    """Batches fsyncs of concurrently pending appends; lives on the server's event loop."""

    def __init__(self) -> None:
        self._dirty: dict[int, MessageStream] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._round: asyncio.Task[None] | None = None
        self.rounds = 0
        self.appends = 0

    async def durable(self, stream: MessageStream) -> None:
        """Returns once everything written to `stream` so far is on disk (and readable)."""
        if stream.limits.in_memory:
            return
        self._dirty[id(stream)] = stream
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.appends += 1
        if self._round is None or self._round.done():
            self._round = asyncio.get_running_loop().create_task(self._run_rounds())
        await waiter

    async def _run_rounds(self) -> None:
        while self._waiters:
            dirty, self._dirty = self._dirty, {}
            waiters, self._waiters = self._waiters, []
            targets = [(stream, *stream.begin_sync()) for stream in dirty.values()]
            failure: OSError | None = None
            descriptors = [descriptor for _, _, descriptor in targets if descriptor is not None]
            try:
                if len(waiters) > 1:
                    await asyncio.to_thread(_fsync_and_close, descriptors)
                else:  # a lone append: a thread hop would only add latency
                    _fsync_and_close(descriptors)
            except OSError as error:
                failure = error
            self.rounds += 1
            for stream, target, _ in targets:
                if failure is None:
                    stream.end_sync(target)
            for waiter in waiters:
                if waiter.done():
                    continue
                if failure is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(failure)
