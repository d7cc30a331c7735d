"""Group commit: one fsync per stream per round covers every append written since the last round.

An append writes its record, then awaits `durable(stream)`. The first waiter starts a round; the round
first yields to the event loop so that appends already received from other connections write theirs,
then fsyncs each dirty stream once and acknowledges all of them together. Under load the cost of an
fsync is shared by every append that arrived while the previous one ran.
"""

from __future__ import annotations

import asyncio

from edgeml.twin.device.streammanager.store.stream import MessageStream


class GroupCommitter:
    """Batches fsyncs of concurrently pending appends; lives on the server's event loop."""

    def __init__(self) -> None:
        self._dirty: dict[int, MessageStream] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._round: asyncio.Task[None] | None = None
        self.rounds = 0

    async def durable(self, stream: MessageStream) -> None:
        """Returns once everything written to `stream` so far is on disk (and readable)."""
        if stream.limits.in_memory:
            return
        self._dirty[id(stream)] = stream
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._round is None or self._round.done():
            self._round = asyncio.get_running_loop().create_task(self._run_rounds())
        await waiter

    async def _run_rounds(self) -> None:
        while self._waiters:
            await asyncio.sleep(0)
            dirty, self._dirty = self._dirty, {}
            waiters, self._waiters = self._waiters, []
            failure: OSError | None = None
            for stream in dirty.values():
                try:
                    stream.sync()
                except OSError as error:
                    failure = error
            self.rounds += 1
            for waiter in waiters:
                if waiter.done():
                    continue
                if failure is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(failure)
