"""A stream's retention settings, read once from its MessageStreamDefinition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream_manager import data as sm

DEFAULT_MAX_SIZE = 256 * 1024 * 1024
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class StreamLimits:
    """max_size and segment size in bytes (record headers included), TTL, and what to do when full."""

    max_size: int
    segment_size: int
    time_to_live_ms: int | None
    overwrite_oldest: bool
    in_memory: bool
    # MessageStreamDefinition.flush_on_write (default false): real Stream Manager fsyncs an append before
    # acknowledging it only when true; otherwise the record is in the OS's page cache when the client hears
    # back (it survives a kill -9 of the server, not a power loss).
    flush_on_write: bool = False

    @property
    def acknowledged_when_written(self) -> bool:
        """Whether an append is acknowledged (and readable) as soon as it is written, without fsync."""
        return self.in_memory or not self.flush_on_write

    @classmethod
    def from_definition(cls, definition: Any) -> StreamLimits:
        return cls(
            max_size=definition.max_size or DEFAULT_MAX_SIZE,
            segment_size=definition.stream_segment_size or DEFAULT_SEGMENT_SIZE,
            time_to_live_ms=definition.time_to_live_millis,
            overwrite_oldest=definition.strategy_on_full == sm.StrategyOnFull.OverwriteOldestData,
            in_memory=definition.persistence == sm.Persistence.Memory,
            flush_on_write=bool(definition.flush_on_write),
        )
