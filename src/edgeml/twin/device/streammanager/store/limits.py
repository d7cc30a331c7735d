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

    @classmethod
    def from_definition(cls, definition: Any) -> StreamLimits:
        return cls(
            max_size=definition.max_size or DEFAULT_MAX_SIZE,
            segment_size=definition.stream_segment_size or DEFAULT_SEGMENT_SIZE,
            time_to_live_ms=definition.time_to_live_millis,
            overwrite_oldest=definition.strategy_on_full == sm.StrategyOnFull.OverwriteOldestData,
            in_memory=definition.persistence == sm.Persistence.Memory,
        )
