"""One message stream: sequence numbers, segments, limits, and readers waiting for new messages.

Everything here runs on the server's event loop thread. An append is written at once but only becomes
visible to readers and exporters (and acknowledged) once `sync` made it durable, so a sequence number
that anyone has seen is never handed out again after a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeml.twin.device.streammanager.errors import InvalidRequestError, StreamFullError
from edgeml.twin.device.streammanager.store.limits import StreamLimits
from edgeml.twin.device.streammanager.store.records import StoredMessage, record_size
from edgeml.twin.device.streammanager.store.segments import Segment

SegmentFactory = Callable[[int], Segment]
Clock = Callable[[], float]


@dataclass(frozen=True)
class StorageStatus:
    """Oldest and newest readable sequence numbers (newest < oldest when empty) and bytes held."""

    oldest_sequence_number: int
    newest_sequence_number: int
    total_bytes: int


class MessageStream:
    """Appends, reads and trims one stream's segments; `definition` is the SDK MessageStreamDefinition."""

    def __init__(
        self,
        definition: Any,
        segments: list[Segment],
        new_segment: SegmentFactory,
        clock: Clock,
    ) -> None:
        self.definition = definition
        self.limits = StreamLimits.from_definition(definition)
        self._new_segment = new_segment
        self._clock = clock
        self._segments = segments or [new_segment(0)]
        self._total_bytes = sum(segment.size_bytes for segment in self._segments)
        self._written_next = self._segments[-1].next_sequence_number
        self._committed_next = self._written_next
        self._waiters: list[asyncio.Future[None]] = []
        self.closed = False

    @property
    def name(self) -> str:
        return str(self.definition.name)

    @property
    def committed_next(self) -> int:
        """The sequence number the next acknowledged message will get; everything below is readable."""
        return self._committed_next

    @property
    def oldest_sequence_number(self) -> int:
        for segment in self._segments:
            if segment.count:
                return segment.first_sequence_number
        return self._written_next

    def storage_status(self) -> StorageStatus:
        return StorageStatus(self.oldest_sequence_number, self._committed_next - 1, self._total_bytes)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- writing -------------------------------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Writes one message and returns its sequence number (durable only after `sync`)."""
        size = record_size(len(payload))
        if size > self.limits.max_size:
            raise InvalidRequestError(
                f"a message of {len(payload)} bytes can never fit in stream {self.name!r} "
                f"(max_size {self.limits.max_size} bytes)"
            )
        if self.limits.time_to_live_ms is not None:
            self.expire()
        if self._total_bytes + size > self.limits.max_size:
            self._make_room(size)
        active = self._segments[-1]
        if active.count and active.size_bytes + size > self.limits.segment_size:
            active.sync()
            active = self._start_segment(active.next_sequence_number)
        sequence_number = self._written_next
        active.append_fields(sequence_number, int(self._clock() * 1000), payload)
        self._written_next += 1
        self._total_bytes += size
        if self.limits.acknowledged_when_written:
            self._commit(self._written_next)
        return sequence_number

    def sync(self) -> None:
        """Makes everything written so far durable, then visible to readers."""
        if self.closed:
            return
        target = self._written_next
        self._segments[-1].sync()
        self._commit(target)

    def begin_sync(self) -> tuple[int, int | None]:
        """(sequence number up to which writes are covered, descriptor to fsync or None) for group commit.

        Earlier segments were fsynced when they were sealed, so only the active one can be unsynced.
        """
        return self._written_next, self._segments[-1].sync_handle()

    def end_sync(self, target: int) -> None:
        """Called after the descriptor from `begin_sync` was fsynced: makes those messages visible."""
        if not self.closed:
            self._commit(target)

    def _commit(self, next_sequence_number: int) -> None:
        if next_sequence_number > self._committed_next:
            self._committed_next = next_sequence_number
            self._wake_readers()

    def _make_room(self, size: int) -> None:
        while self._total_bytes + size > self.limits.max_size:
            if not self.limits.overwrite_oldest:
                raise StreamFullError(
                    f"stream {self.name!r} is full ({self._total_bytes} of {self.limits.max_size} bytes) "
                    "and its strategy_on_full is RejectNewData"
                )
            self._drop_oldest_segment()

    def _start_segment(self, first_sequence_number: int) -> Segment:
        segment = self._new_segment(first_sequence_number)
        self._segments.append(segment)
        return segment

    def _drop_oldest_segment(self) -> None:
        oldest = self._segments.pop(0)
        self._total_bytes -= oldest.size_bytes
        oldest.destroy()
        if not self._segments:
            self._start_segment(oldest.next_sequence_number)

    def expire(self) -> None:
        """Drops whole segments whose newest message is older than time_to_live_millis."""
        ttl = self.limits.time_to_live_ms
        if ttl is None:
            return
        cutoff = self.now_ms() - ttl
        while self._segments[0].count and self._segments[0].newest_ingest_ms < cutoff:
            self._drop_oldest_segment()

    def redefine(self, definition: Any) -> None:
        """Applies an updated definition; a smaller max_size trims at once under OverwriteOldestData."""
        self.definition = definition
        self.limits = StreamLimits.from_definition(definition)
        self.expire()
        if self.limits.overwrite_oldest:
            self._make_room(0)

    # -- reading -------------------------------------------------------------------------------------

    def available_from(self, start: int) -> int:
        """How many acknowledged messages there are from `start` on."""
        return max(0, self._committed_next - max(start, self.oldest_sequence_number))

    def read(self, start: int, max_count: int, max_bytes: int | None = None) -> list[StoredMessage]:
        """Up to `max_count` acknowledged messages from `start` (or the oldest kept, if later), in order.

        With `max_bytes`, stops before the payloads would exceed it (always returns at least one message).
        """
        messages: list[StoredMessage] = []
        used = 0
        for segment in list(self._segments):
            if segment.next_sequence_number <= start:
                continue
            sequence_number = max(start, segment.first_sequence_number)
            while sequence_number < min(segment.next_sequence_number, self._committed_next):
                if len(messages) >= max_count:
                    return messages
                message = segment.read(sequence_number)
                used += record_size(len(message.payload))
                if max_bytes is not None and messages and used > max_bytes:
                    return messages
                messages.append(message)
                sequence_number += 1
        return messages

    async def wait_for_change(self, timeout_s: float) -> None:
        """Returns when messages were acknowledged or dropped, or after `timeout_s`."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=max(timeout_s, 0))
        except TimeoutError:
            pass
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake_readers(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        self.closed = True
        self._wake_readers()
        for segment in self._segments:
            segment.close()

    def destroy(self) -> None:
        self.closed = True
        self._wake_readers()
        for segment in self._segments:
            segment.destroy()
        self._segments = []
