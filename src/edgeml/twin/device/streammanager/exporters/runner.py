"""Drives one exporter: waits for a batch to be due, delivers it (retrying with backoff), checkpoints it.

Batching follows the SDK's documentation: without batch_interval_millis messages are eligible at once;
with it, a batch goes when batch_size messages are waiting or the oldest waiting one is older than the
interval. A batch is sent whole before the next one is read, so order is kept across an outage, and the
checkpoint moves only after delivery, so a crash in between re-sends (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from edgeml.twin.device.streammanager.errors import MessageStoreReadError
from edgeml.twin.device.streammanager.exporters.base import ExportAttempt, ExportTarget
from edgeml.twin.device.streammanager.exporters.checkpoint import CheckpointStore, ExportCheckpoint
from edgeml.twin.device.streammanager.exporters.retry import Backoff, RetryPolicy
from edgeml.twin.device.streammanager.exporters.scheduler import PriorityGate
from edgeml.twin.device.streammanager.store.records import StoredMessage
from edgeml.twin.device.streammanager.store.stream import MessageStream

IDLE_WAIT_S = 1.0
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExporterStatus:
    """What describe_message_stream reports for one exporter (the SDK's exportStatuses)."""

    identifier: str
    last_exported_sequence_number: int
    last_export_time_ms: int | None
    error_message: str | None
    exported_bytes: int
    exported_messages: int


class ExportRunner:
    """One exporter of one stream, as an asyncio task on the server's loop."""

    def __init__(
        self,
        stream: MessageStream,
        target: ExportTarget,
        checkpoints: CheckpointStore,
        gate: PriorityGate,
        retry: RetryPolicy,
    ) -> None:
        self.stream = stream
        self.target = target
        self.settings = target.settings
        self._checkpoints = checkpoints
        self._gate = gate
        self._backoff = Backoff(retry)
        self.checkpoint = checkpoints.load(self.settings.identifier) or ExportCheckpoint(
            next_sequence_number=self.settings.start_sequence_number
        )
        self.error_message: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not self.settings.disabled:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.settings.identifier)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await task
            except Exception:  # never raised by _run; stopping (deleting a stream) must not fail on it
                _log.exception("exporter %s had stopped on an error", self.settings.identifier)

    def status(self) -> ExporterStatus:
        checkpoint = self.checkpoint
        return ExporterStatus(
            identifier=self.settings.identifier,
            last_exported_sequence_number=checkpoint.last_exported_sequence_number,
            last_export_time_ms=checkpoint.last_export_time_ms,
            error_message=self.error_message,
            exported_bytes=checkpoint.exported_bytes,
            exported_messages=checkpoint.exported_messages,
        )

    async def _run(self) -> None:
        while not self.stream.closed:
            start = max(self.checkpoint.next_sequence_number, self.stream.oldest_sequence_number)
            try:
                wait_s = self._wait_before_batch(start)
                if wait_s is not None:
                    await self.stream.wait_for_change(wait_s)
                    continue
                batch = self.stream.read(start, self.settings.batch_size)
            except MessageStoreReadError as error:
                _log.error("exporter %s skips message %d: %s", self.settings.identifier, start, error)
                self.error_message = str(error)
                self.checkpoint.next_sequence_number = start + 1
                continue
            await self._deliver(batch)
            self._advance(batch)

    def _wait_before_batch(self, start: int) -> float | None:
        """Seconds to wait before the next batch is due, or None when it is due now."""
        available = self.stream.available_from(start)
        if available == 0:
            return IDLE_WAIT_S
        interval_ms = self.settings.batch_interval_ms
        if interval_ms is None or available >= self.settings.batch_size:
            return None
        oldest = self.stream.read(start, 1)[0]
        due_in_s = (oldest.ingest_time_ms + interval_ms - self.stream.now_ms()) / 1000
        return None if due_in_s <= 0 else min(due_in_s, IDLE_WAIT_S)

    async def _deliver(self, batch: list[StoredMessage]) -> None:
        remaining = batch
        while True:
            async with self._gate.slot(self.settings.priority):
                self.checkpoint.last_export_time_ms = self.stream.now_ms()
                attempt = await self._attempt(remaining)
            if not attempt.remaining:
                break
            self.error_message = attempt.error
            remaining = attempt.remaining
            delay = self._backoff.next_delay()
            _log.info("exporter %s: %s; retry in %.2fs", self.settings.identifier, attempt.error, delay)
            await asyncio.sleep(delay)
        self._backoff.reset()
        self.error_message = None

    async def _attempt(self, messages: list[StoredMessage]) -> ExportAttempt:
        """One call of the target; an error it did not expect is a failed attempt, retried like any other
        (an exporter that died on one would never export again and would fail the stream's deletion)."""
        try:
            return await asyncio.to_thread(self.target.export, messages)
        except Exception as error:
            _log.exception("exporter %s: unexpected error", self.settings.identifier)
            return ExportAttempt(list(messages), f"{type(error).__name__}: {error}")

    def _advance(self, batch: list[StoredMessage]) -> None:
        checkpoint = self.checkpoint
        checkpoint.next_sequence_number = batch[-1].sequence_number + 1
        checkpoint.last_exported_sequence_number = batch[-1].sequence_number
        checkpoint.exported_messages += len(batch)
        checkpoint.exported_bytes += sum(len(message.payload) for message in batch)
        if not self.stream.closed:
            self._checkpoints.save(self.settings.identifier, checkpoint)
