"""Segments: the unit a stream grows by and is trimmed by (max_size, time_to_live_millis).

A `FileSegment` is one append-only file named after its first sequence number; a `MemorySegment` keeps the
same accounting in memory so both persistences hit their limits at the same point.
"""

from __future__ import annotations

import contextlib
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path

from edgeml.twin.device.streammanager.errors import MessageStoreReadError
from edgeml.twin.device.streammanager.store.records import (
    CorruptRecord,
    StoredMessage,
    decode_record,
    encode_record_fields,
    record_size,
    scan_records,
)

SEGMENT_SUFFIX = ".log"
_log = logging.getLogger(__name__)


class Segment(ABC):
    """A run of consecutive messages starting at `first_sequence_number`."""

    def __init__(self, first_sequence_number: int) -> None:
        self.first_sequence_number = first_sequence_number
        self.size_bytes = 0
        self.newest_ingest_ms = 0

    @property
    @abstractmethod
    def count(self) -> int:
        """Messages in the segment."""

    @property
    def next_sequence_number(self) -> int:
        return self.first_sequence_number + self.count

    def holds(self, sequence_number: int) -> bool:
        return self.first_sequence_number <= sequence_number < self.next_sequence_number

    @abstractmethod
    def append(self, message: StoredMessage) -> None:
        """Adds the message at the end (its sequence number must be `next_sequence_number`)."""

    def append_fields(self, sequence_number: int, ingest_time_ms: int, payload: bytes) -> None:
        """`append` without building the StoredMessage first, where the segment has no use for one."""
        self.append(StoredMessage(sequence_number, ingest_time_ms, payload))

    @abstractmethod
    def read(self, sequence_number: int) -> StoredMessage:
        """The message with that sequence number; MessageStoreReadError if it cannot be read back intact."""

    @abstractmethod
    def sync(self) -> None:
        """Makes every appended message durable (no-op in memory)."""

    def sync_handle(self) -> int | None:
        """A duplicate descriptor to fsync off the event loop, or None when nothing is unsynced.

        The caller owns (and closes) the duplicate, so the segment may roll or be dropped meanwhile.
        """
        return None

    @abstractmethod
    def close(self) -> None:
        """Releases what the segment holds open; its data stays."""

    @abstractmethod
    def destroy(self) -> None:
        """Drops the segment and its data."""


class MemorySegment(Segment):
    """Persistence.Memory: messages in a list, gone with the process."""

    def __init__(self, first_sequence_number: int) -> None:
        super().__init__(first_sequence_number)
        self._messages: list[StoredMessage] = []

    @property
    def count(self) -> int:
        return len(self._messages)

    def append(self, message: StoredMessage) -> None:
        self._messages.append(message)
        self.size_bytes += record_size(len(message.payload))
        self.newest_ingest_ms = max(self.newest_ingest_ms, message.ingest_time_ms)

    def read(self, sequence_number: int) -> StoredMessage:
        return self._messages[sequence_number - self.first_sequence_number]

    def sync(self) -> None:
        return None

    def close(self) -> None:
        return None

    def destroy(self) -> None:
        self._messages.clear()


class FileSegment(Segment):
    """Persistence.File: records appended to `<first sequence number>.log` with one write each."""

    def __init__(self, path: Path, first_sequence_number: int, offsets: list[int], size: int) -> None:
        super().__init__(first_sequence_number)
        self.path = path
        self._offsets = offsets
        self.size_bytes = size
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._dirty = False

    @staticmethod
    def file_name(first_sequence_number: int) -> str:
        return f"{first_sequence_number:020d}{SEGMENT_SUFFIX}"

    @classmethod
    def create(cls, directory: Path, first_sequence_number: int) -> FileSegment:
        segment = cls(directory / cls.file_name(first_sequence_number), first_sequence_number, [], 0)
        sync_directory(directory)
        return segment

    @classmethod
    def recover(cls, path: Path) -> FileSegment:
        """Opens an existing segment, cutting off a torn or damaged tail (what a kill -9 mid-write leaves)."""
        first = int(path.name.removesuffix(SEGMENT_SUFFIX))
        scan = scan_records(path.read_bytes(), first)
        if scan.torn:
            _log.warning("segment %s: cutting torn tail at byte %d", path, scan.valid_bytes)
            with open(path, "r+b") as handle:
                handle.truncate(scan.valid_bytes)
                handle.flush()
                os.fsync(handle.fileno())
        segment = cls(path, first, scan.offsets, scan.valid_bytes)
        segment.newest_ingest_ms = scan.newest_ingest_ms
        return segment

    @property
    def count(self) -> int:
        return len(self._offsets)

    def _descriptor(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        return self._fd

    def append(self, message: StoredMessage) -> None:
        self.append_fields(message.sequence_number, message.ingest_time_ms, message.payload)

    def append_fields(self, sequence_number: int, ingest_time_ms: int, payload: bytes) -> None:
        record = encode_record_fields(sequence_number, ingest_time_ms, payload)
        descriptor = self._fd if self._fd is not None else self._descriptor()
        written = os.write(descriptor, record)
        if written < len(record):  # short write (rare): finish it
            view = memoryview(record)
            while written < len(record):
                written += os.write(descriptor, view[written:])
        self._offsets.append(self.size_bytes)
        self.size_bytes += len(record)
        if ingest_time_ms > self.newest_ingest_ms:
            self.newest_ingest_ms = ingest_time_ms
        self._dirty = True

    def read(self, sequence_number: int) -> StoredMessage:
        index = sequence_number - self.first_sequence_number
        start = self._offsets[index]
        end = self._offsets[index + 1] if index + 1 < len(self._offsets) else self.size_bytes
        try:
            buffer = os.pread(self._descriptor(), end - start, start)
            message, _ = decode_record(buffer)
        except (OSError, CorruptRecord) as error:
            raise MessageStoreReadError(
                f"cannot read message {sequence_number} from {self.path}: {error}"
            ) from error
        if message.sequence_number != sequence_number:
            raise MessageStoreReadError(f"record at {self.path}:{start} holds {message.sequence_number}")
        return message

    def sync(self) -> None:
        if self._dirty and self._fd is not None:
            os.fsync(self._fd)
            self._dirty = False

    def sync_handle(self) -> int | None:
        if not self._dirty or self._fd is None:
            return None
        self._dirty = False
        return os.dup(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def destroy(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sync_directory(self.path.parent)


def sync_directory(directory: Path) -> None:
    """fsyncs a directory so that files created or removed in it stay so after a crash."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
