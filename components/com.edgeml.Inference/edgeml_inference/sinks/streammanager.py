"""Stream Manager sink and the streams the app creates at start.

Results go to a stream with File persistence, flush_on_write (no acknowledged result is lost on power
loss), a size budget (StreamMaxBytes) and OverwriteOldestData, exported to Kinesis: while the device is
offline they wait in the stream, and the exporter catches up when it is back.
Captured inputs go to a second stream whose messages are S3ExportTaskDefinitions (file -> S3 object).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from edgeml_inference.sinks.base import Sink

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSpec:
    """One stream the app owns. `kinesis_stream` or `s3_export` adds the matching exporter."""

    name: str
    max_bytes: int
    kinesis_stream: str = ""
    s3_export: bool = False
    status_stream: str = ""
    # fsync each append before it is acknowledged (MessageStreamDefinition.flush_on_write; Stream Manager's
    # default is false: an acknowledged append is then in the page cache only and a power loss can take it)
    flush_on_write: bool = False


def stream_definition(spec: StreamSpec) -> Any:
    from stream_manager import (
        ExportDefinition,
        KinesisConfig,
        MessageStreamDefinition,
        Persistence,
        S3ExportTaskExecutorConfig,
        StatusConfig,
        StatusLevel,
        StrategyOnFull,
    )

    kinesis = (
        [
            KinesisConfig(
                identifier=f"{spec.name}Kinesis", kinesis_stream_name=spec.kinesis_stream, batch_size=100
            )
        ]
        if spec.kinesis_stream
        else None
    )
    s3 = None
    if spec.s3_export:
        status = (
            StatusConfig(status_level=StatusLevel.INFO, status_stream_name=spec.status_stream)
            if spec.status_stream
            else None
        )
        s3 = [S3ExportTaskExecutorConfig(identifier=f"{spec.name}S3", status_config=status)]
    export = ExportDefinition(kinesis=kinesis, s3_task_executor=s3) if (kinesis or s3) else None
    return MessageStreamDefinition(
        name=spec.name,
        max_size=spec.max_bytes,
        stream_segment_size=max(1024, min(16 * 1024 * 1024, spec.max_bytes // 4)),
        strategy_on_full=StrategyOnFull.OverwriteOldestData,
        persistence=Persistence.File,
        flush_on_write=spec.flush_on_write,
        export_definition=export,
    )


def ensure_streams(client: Any, specs: list[StreamSpec]) -> None:
    """Creates each stream that is absent; an existing one is updated to the definition."""
    existing = set(client.list_streams())
    for spec in specs:
        if not spec.name:
            continue
        if spec.status_stream and spec.status_stream not in existing:
            status = StreamSpec(spec.status_stream, max_bytes=min(spec.max_bytes, 16 * 1024 * 1024))
            client.create_message_stream(stream_definition(status))
            existing.add(spec.status_stream)
        definition = stream_definition(spec)
        if spec.name in existing:
            try:
                client.update_message_stream(definition)
            except Exception as error:  # an older server may not update exports; the stream still works
                _log.warning("cannot update stream %s: %s", spec.name, error)
        else:
            client.create_message_stream(definition)
            existing.add(spec.name)


class StreamSink(Sink):
    """Appends each payload to one Stream Manager stream."""

    name = "streammanager"

    def __init__(self, client: Any, stream: str) -> None:
        self.client = client
        self.stream = stream
        self.name = f"stream:{stream}"

    def send(self, payload: bytes) -> None:
        self.client.append_message(self.stream, payload)


def s3_export_task(input_path: str, bucket: str, key: str, metadata: dict[str, str] | None = None) -> bytes:
    """The message that asks Stream Manager's S3 exporter to upload `input_path` to s3://bucket/key."""
    from stream_manager import S3ExportTaskDefinition
    from stream_manager.util import Util

    task = S3ExportTaskDefinition(
        input_url=f"file://{input_path}", bucket=bucket, key=key, user_metadata=metadata
    )
    data: bytes = Util.validate_and_serialize_to_json_bytes(task)
    return data


def json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")
