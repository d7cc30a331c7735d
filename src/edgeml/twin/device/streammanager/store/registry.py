"""The set of streams: create, update, delete, look up, and recovery from the store root at start.

Files are laid out as `layout.py` says (a stream's directory is named by a hash of its name, the name is
in its definition.json). Memory streams live only in the process (definition included).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from stream_manager import data as sm

from edgeml.twin.device.streammanager.errors import (
    InvalidRequestError,
    StreamManagerTwinError,
    StreamNotFoundError,
    UpdateNotAllowedError,
)
from edgeml.twin.device.streammanager.store.layout import DEFINITION_FILE, stream_directory, streams_directory
from edgeml.twin.device.streammanager.store.segments import (
    SEGMENT_SUFFIX,
    FileSegment,
    MemorySegment,
    Segment,
    sync_directory,
)
from edgeml.twin.device.streammanager.store.stream import Clock, MessageStream, SegmentFactory

_log = logging.getLogger(__name__)


def write_json_atomically(path: Path, document: Any) -> None:
    """Writes JSON to a temporary file, fsyncs it and renames it over `path`."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync_directory(path.parent)


class StoreLayoutError(StreamManagerTwinError):
    """The store holds two directories for one stream."""


class StreamRegistry:
    """Every stream the server holds, by name."""

    def __init__(self, root: Path, clock: Clock) -> None:
        self.root = root
        self._clock = clock
        self._streams: dict[str, MessageStream] = {}
        streams_directory(root).mkdir(parents=True, exist_ok=True)

    def directory_of(self, name: str) -> Path:
        return stream_directory(self.root, name)

    @classmethod
    def recover(cls, root: Path, clock: Clock) -> StreamRegistry:
        """Opens every File stream found under `root`, cutting torn segment tails."""
        registry = cls(root, clock)
        for definition_path in sorted(streams_directory(root).glob(f"*/{DEFINITION_FILE}")):
            definition = sm.MessageStreamDefinition.from_dict(json.loads(definition_path.read_text()))
            directory = registry._move_to_its_place(definition.name, definition_path.parent)
            segments: list[Segment] = [
                FileSegment.recover(path) for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))
            ]
            registry._streams[definition.name] = MessageStream(
                definition, segments, registry._segment_factory(definition, directory), clock
            )
            _log.info("recovered stream %s (%d segments)", definition.name, len(segments))
        return registry

    def _move_to_its_place(self, name: str, directory: Path) -> Path:
        """Renames a stream directory of the older layout (`s_<quoted name>`) to where `name` lives now.

        One rename, so a kill -9 leaves the directory under either name, and the next start finishes.
        """
        place = self.directory_of(name)
        if directory == place:
            return place
        if (place / DEFINITION_FILE).exists():
            raise StoreLayoutError(f"stream {name!r} is stored twice: in {directory} and in {place}")
        if place.exists():  # what an interrupted delete leaves (no definition): create() would clear it too
            shutil.rmtree(place)
        os.rename(directory, place)
        sync_directory(place.parent)
        _log.info("moved stream %s from %s to %s", name, directory.name, place.name)
        return place

    def _segment_factory(self, definition: Any, directory: Path) -> SegmentFactory:
        if definition.persistence == sm.Persistence.Memory:
            return MemorySegment

        def new_file_segment(first_sequence_number: int) -> Segment:
            return FileSegment.create(directory, first_sequence_number)

        return new_file_segment

    def names(self) -> list[str]:
        return list(self._streams)

    def streams(self) -> list[MessageStream]:
        return list(self._streams.values())

    def get(self, name: str) -> MessageStream:
        try:
            return self._streams[name]
        except KeyError:
            raise StreamNotFoundError(f"message stream {name!r} does not exist") from None

    def create(self, definition: Any) -> MessageStream:
        if definition.name in self._streams:
            raise InvalidRequestError(f"message stream {definition.name!r} already exists")
        _check_export_identifiers(definition)
        if definition.persistence is None:
            definition.persistence = sm.Persistence.File
        directory = self.directory_of(definition.name)
        if definition.persistence == sm.Persistence.File:
            if directory.exists():
                shutil.rmtree(directory)
            directory.mkdir(parents=True)
            write_json_atomically(directory / DEFINITION_FILE, definition.as_dict())
        stream = MessageStream(definition, [], self._segment_factory(definition, directory), self._clock)
        self._streams[definition.name] = stream
        return stream

    def update(self, definition: Any) -> MessageStream:
        stream = self.get(definition.name)
        if definition.persistence is None:
            definition.persistence = stream.definition.persistence
        if definition.persistence != stream.definition.persistence:
            raise UpdateNotAllowedError("persistence of an existing stream cannot change")
        _check_export_identifiers(definition)
        if definition.persistence == sm.Persistence.File:
            write_json_atomically(self.directory_of(definition.name) / DEFINITION_FILE, definition.as_dict())
        stream.redefine(definition)
        return stream

    def delete(self, name: str) -> MessageStream:
        stream = self.get(name)
        del self._streams[name]
        stream.destroy()
        directory = self.directory_of(name)
        if directory.exists():
            shutil.rmtree(directory)
        return stream

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()


def _check_export_identifiers(definition: Any) -> None:
    identifiers = [config.identifier for _, config in export_configs_by_kind(definition)]
    duplicates = sorted({identifier for identifier in identifiers if identifiers.count(identifier) > 1})
    if duplicates:
        raise InvalidRequestError(f"export identifiers must be unique in a stream: {', '.join(duplicates)}")


def export_configs_by_kind(definition: Any) -> list[tuple[str, Any]]:
    """Every export configuration of a definition with its kind (kinesis, s3, iot_analytics, http, ...)."""
    export = definition.export_definition
    if export is None:
        return []
    groups: list[tuple[str, Any]] = [
        ("kinesis", export.kinesis),
        ("s3", export.s3_task_executor),
        ("iot_analytics", export.iot_analytics),
        ("http", export.http),
        ("iot_sitewise", export.iot_sitewise),
    ]
    return [(kind, config) for kind, configs in groups for config in (configs or [])]
