"""Export progress per exporter, saved after every delivered batch so that a restart resumes there."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeml.twin.device.streammanager.store.registry import write_json_atomically


@dataclass
class ExportCheckpoint:
    """Where an exporter is: the next sequence number to send and what it has delivered so far."""

    next_sequence_number: int
    last_exported_sequence_number: int = -1
    exported_bytes: int = 0
    exported_messages: int = 0
    last_export_time_ms: int | None = None


class CheckpointStore:
    """Checkpoints of one stream's exporters: JSON files in `directory`, or only in memory when None."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[str, ExportCheckpoint] = {}

    def _path(self, identifier: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{identifier}.json"

    def load(self, identifier: str) -> ExportCheckpoint | None:
        if self.directory is None:
            return self._memory.get(identifier)
        path = self._path(identifier)
        if not path.exists():
            return None
        return ExportCheckpoint(**json.loads(path.read_text()))

    def save(self, identifier: str, checkpoint: ExportCheckpoint) -> None:
        if self.directory is None:
            self._memory[identifier] = ExportCheckpoint(**asdict(checkpoint))
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self._path(identifier), asdict(checkpoint))

    def forget(self, identifier: str) -> None:
        self._memory.pop(identifier, None)
        if self.directory is not None:
            self._path(identifier).unlink(missing_ok=True)
