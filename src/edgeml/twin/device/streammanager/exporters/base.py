"""The interface every export destination implements, and what all of them share.

A target's `export` runs in a worker thread (boto3 calls block) and returns the messages it could not
deliver; the runner (`runner.py`) retries those with backoff and checkpoints only complete batches.
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeml.twin.device.streammanager.store.records import StoredMessage

# Status messages go from a worker thread to a stream on the event loop: (stream name, JSON payload).
StatusSink = Callable[[str, bytes], None]

# boto3 and botocore ship no type hints, so they are imported as untyped modules.
_boto3: Any = importlib.import_module("boto3")
_botocore_config: Any = importlib.import_module("botocore.config")
_botocore_exceptions: Any = importlib.import_module("botocore.exceptions")

# What a failed AWS call raises: no connection, timeouts, and error responses of the service.
AWS_ERRORS: tuple[type[Exception], ...] = (
    _botocore_exceptions.BotoCoreError,
    _botocore_exceptions.ClientError,
)

_CLIENT_CONFIG = _botocore_config.Config(
    connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 1}
)
_client_lock = threading.Lock()


def aws_client(service: str) -> Any:
    """A plain boto3 client (it honours AWS_ENDPOINT_URL[_<SERVICE>]); the runner does the retrying."""
    with _client_lock:  # creating clients from several threads at once is not safe in boto3
        return _boto3.client(service, config=_CLIENT_CONFIG)


@dataclass(frozen=True)
class ExporterSettings:
    """The fields every export configuration shares (KinesisConfig, S3ExportTaskExecutorConfig, ...)."""

    identifier: str
    batch_size: int
    batch_interval_ms: int | None
    priority: int | None
    start_sequence_number: int
    disabled: bool

    @classmethod
    def from_config(cls, config: Any, default_batch_size: int) -> ExporterSettings:
        return cls(
            identifier=config.identifier,
            batch_size=getattr(config, "batch_size", None) or default_batch_size,
            batch_interval_ms=getattr(config, "batch_interval_millis", None),
            priority=config.priority,
            start_sequence_number=getattr(config, "start_sequence_number", None) or 0,
            disabled=bool(config.disabled),
        )


@dataclass
class ExportAttempt:
    """What one call delivered: the messages still to send (empty: all done) and why, if any are left."""

    remaining: list[StoredMessage] = field(default_factory=list)
    error: str | None = None


class ExportTarget(ABC):
    """One destination of one stream, built from its export configuration."""

    def __init__(self, settings: ExporterSettings) -> None:
        self.settings = settings

    @abstractmethod
    def export(self, messages: list[StoredMessage]) -> ExportAttempt:
        """Sends `messages` (in order); blocking, called from a worker thread."""


class UnavailableTarget(ExportTarget):
    """A destination the twin cannot reach (HTTP, IoT SiteWise, or a service boto3 has no model for)."""

    def __init__(self, settings: ExporterSettings, reason: str) -> None:
        super().__init__(settings)
        self.reason = reason

    def export(self, messages: list[StoredMessage]) -> ExportAttempt:
        return ExportAttempt(list(messages), self.reason)
