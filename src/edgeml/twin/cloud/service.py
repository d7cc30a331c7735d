"""The contract between the cloud twin's protocol layer and its service backends.

The protocol layer (`edgeml.twin.cloud.protocol`) parses a request with botocore's own service model
(operation, URI template, members, every check the model itself expresses: required members, types,
lengths, patterns, enums, ranges) and calls the backend method named after the operation in snake_case
(`CreateDeployment` -> `create_deployment`) with the input shape's members as keyword arguments,
named exactly as in the model (`targetArn`, `iotJobConfiguration`, ...). Timestamps arrive as aware
`datetime`, blobs as `bytes`, structures as dicts, lists as lists. A member absent from the request is
absent from the kwargs.

The backend does the service's semantics and returns a dict of the output shape's members (same
naming and Python types); the protocol layer serialises it with the model (status code, headers,
body). A semantic failure is a `ServiceError` with the error shape's code and extra members
(`reason`, `fields`, `resourceId`, `resourceType`, `quotaCode`, ...); the protocol layer answers it with
the HTTP status the model gives that error shape. An operation the backend has no method for is
answered with the model's error shape for an unsupported call, saying the twin does not support it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


@dataclass
class ServiceError(Exception):
    """A service error as the real API answers it: error shape name, message, the shape's other members."""

    code: str
    message: str
    members: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def validation_error(
    message: str, *, reason: str = "FIELD_VALIDATION_FAILED", field_name: str = ""
) -> ServiceError:
    """GreengrassV2's ValidationException with its `reason` and, when one field is at fault, `fields`."""
    members: dict[str, Any] = {"reason": reason}
    if field_name:
        members["fields"] = [{"name": field_name, "message": message}]
    return ServiceError("ValidationException", message, members)


class Backend(Protocol):
    """Marker protocol: any object whose snake_case methods implement operations of one service model."""


class Clock(Protocol):
    """Where the twin's backends read the time: injectable, so a test runs an hour of rollout in a second."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


class ScaledClock:
    """Real time sped up by `factor` from when it is made (factor 60: an hour of rollout a minute)."""

    def __init__(self, factor: float, start: datetime | None = None) -> None:
        self._factor = factor
        self._start = start or datetime.now(UTC)
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._factor)
