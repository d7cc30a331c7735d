"""Times are epoch seconds (floats) in the state, aware datetimes towards the protocol layer."""

from __future__ import annotations

from datetime import UTC, datetime


def to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def to_epoch(moment: datetime) -> float:
    return moment.timestamp()
