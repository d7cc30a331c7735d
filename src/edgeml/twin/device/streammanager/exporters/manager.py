"""Keeps each stream's exporters in line with its export definition (create, update, delete, restart)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from edgeml.twin.device.streammanager.exporters.base import ExporterSettings, ExportTarget, UnavailableTarget
from edgeml.twin.device.streammanager.exporters.checkpoint import CheckpointStore
from edgeml.twin.device.streammanager.exporters.iot_analytics import IoTAnalyticsTarget
from edgeml.twin.device.streammanager.exporters.kinesis import KinesisTarget
from edgeml.twin.device.streammanager.exporters.retry import RetryPolicy
from edgeml.twin.device.streammanager.exporters.runner import ExporterStatus, ExportRunner
from edgeml.twin.device.streammanager.exporters.s3 import S3Target
from edgeml.twin.device.streammanager.exporters.scheduler import PriorityGate
from edgeml.twin.device.streammanager.store.registry import StreamRegistry, export_configs_by_kind
from edgeml.twin.device.streammanager.store.stream import MessageStream

# Appends a status message to a stream on the loop: (stream name, payload).
AppendStatus = Callable[[str, bytes], Awaitable[None]]
STATUS_APPEND_TIMEOUT_S = 10.0
_log = logging.getLogger(__name__)


class ExportManager:
    """Every exporter of every stream; all methods run on the server's event loop."""

    def __init__(self, registry: StreamRegistry, append_status: AppendStatus, retry: RetryPolicy) -> None:
        self._registry = registry
        self._append_status = append_status
        self._retry = retry
        self._gate = PriorityGate()
        self._runners: dict[str, dict[str, tuple[dict[str, Any], ExportRunner]]] = {}
        self._checkpoints: dict[str, CheckpointStore] = {}

    def _checkpoint_store(self, stream: MessageStream) -> CheckpointStore:
        store = self._checkpoints.get(stream.name)
        if store is None:
            directory = None if stream.limits.in_memory else self._registry.directory_of(stream.name)
            store = self._checkpoints[stream.name] = CheckpointStore(directory)
        return store

    async def configure(self, stream: MessageStream) -> None:
        """Starts, restarts or stops exporters so that they match the stream's export definition."""
        current = self._runners.setdefault(stream.name, {})
        wanted = {
            config.identifier: (kind, config) for kind, config in export_configs_by_kind(stream.definition)
        }
        for identifier in list(current):
            config_dict, runner = current[identifier]
            if identifier not in wanted or wanted[identifier][1].as_dict() != config_dict:
                await runner.stop()
                del current[identifier]
                if identifier not in wanted:
                    self._checkpoint_store(stream).forget(identifier)
        for identifier, (kind, config) in wanted.items():
            if identifier in current:
                continue
            target = self._build_target(kind, config, stream.name)
            runner = ExportRunner(stream, target, self._checkpoint_store(stream), self._gate, self._retry)
            current[identifier] = (config.as_dict(), runner)
            runner.start()

    async def remove(self, stream_name: str) -> None:
        for _, runner in self._runners.pop(stream_name, {}).values():
            await runner.stop()
        self._checkpoints.pop(stream_name, None)

    def statuses(self, stream_name: str) -> list[ExporterStatus]:
        return [runner.status() for _, runner in self._runners.get(stream_name, {}).values()]

    async def stop(self) -> None:
        for name in list(self._runners):
            await self.remove(name)

    def _build_target(self, kind: str, config: Any, stream_name: str) -> ExportTarget:
        if kind == "kinesis":
            return KinesisTarget(config)
        if kind == "s3":
            return S3Target(config, stream_name, self._status_sink())
        if kind == "iot_analytics":
            return IoTAnalyticsTarget(config)
        return UnavailableTarget(
            ExporterSettings.from_config(config, default_batch_size=1),
            f"{kind} export is not supported by the Stream Manager twin",
        )

    def _status_sink(self) -> Callable[[str, bytes], None]:
        loop = asyncio.get_running_loop()

        def sink(stream_name: str, payload: bytes) -> None:
            future = asyncio.run_coroutine_threadsafe(
                _as_coroutine(self._append_status(stream_name, payload)), loop
            )
            try:
                future.result(timeout=STATUS_APPEND_TIMEOUT_S)
            except Exception as error:
                _log.warning("status message to %s not appended: %s", stream_name, error)

        return sink


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable
