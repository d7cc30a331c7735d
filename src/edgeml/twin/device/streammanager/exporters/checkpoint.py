"""Export progress per exporter, saved after every delivered batch so that a restart resumes there."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeml.twin.device.streammanager.store.layout import checkpoint_path, legacy_checkpoint_path
from edgeml.twin.device.streammanager.store.registry import write_json_atomically
from edgeml.twin.device.streammanager.store.segments import sync_directory


@dataclass
class ExportCheckpoint:
    """Where an exporter is: the next sequence number to send and what it has delivered so far."""

    next_sequence_number: int
    last_exported_sequence_number: int = -1
    exported_bytes: int = 0
    exported_messages: int = 0
    last_export_time_ms: int | None = None


class CheckpointStore:
    """Checkpoints of one stream's exporters: JSON files under the stream's directory (see layout.py),
    or only in memory when `stream_dir` is None."""

    def __init__(self, stream_dir: Path | None) -> None:
        self.stream_dir = stream_dir
        self._memory: dict[str, ExportCheckpoint] = {}

    def load(self, identifier: str) -> ExportCheckpoint | None:
        if self.stream_dir is None:
            return self._memory.get(identifier)
        self._move_legacy(identifier)
        path = checkpoint_path(self.stream_dir, identifier)
        if not path.exists():
            return None
        return ExportCheckpoint(**json.loads(path.read_text()))

    def save(self, identifier: str, checkpoint: ExportCheckpoint) -> None:
        if self.stream_dir is None:
            self._memory[identifier] = ExportCheckpoint(**asdict(checkpoint))
            return
        path = checkpoint_path(self.stream_dir, identifier)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(path, asdict(checkpoint))

    def forget(self, identifier: str) -> None:
        self._memory.pop(identifier, None)
        if self.stream_dir is not None:
            checkpoint_path(self.stream_dir, identifier).unlink(missing_ok=True)
            legacy = legacy_checkpoint_path(self.stream_dir, identifier)
            if legacy is not None:
                legacy.unlink(missing_ok=True)

    def _move_legacy(self, identifier: str) -> None:
        """Moves a checkpoint of the older layout (`exports/<identifier>.json`): the new file is written
        (atomically) before the old one goes, so a kill -9 in between leaves one of them to resume from."""
        assert self.stream_dir is not None
        legacy = legacy_checkpoint_path(self.stream_dir, identifier)
        if legacy is None or not legacy.exists():
            return
        path = checkpoint_path(self.stream_dir, identifier)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomically(path, json.loads(legacy.read_text()))
        legacy.unlink()
        sync_directory(legacy.parent)
        with contextlib.suppress(OSError):  # not empty: other exporters' checkpoints are still there
            legacy.parent.rmdir()
