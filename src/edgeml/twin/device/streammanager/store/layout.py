"""Where a stream and its export checkpoints live under the store root.

Stream names and export identifiers may be 255 characters of `[\\w ,.\\-_]` (\\w is Unicode: up to 765
bytes in UTF-8), more than a file name can hold (255 bytes), so files are named by a hash and the
names themselves are stored inside::

    streams/h_<sha256 of the name>/definition.json                    MessageStreamDefinition, name included
    streams/h_<sha256 of the name>/<first seq>.log                    segment files (Persistence.File)
    streams/h_<sha256 of the name>/checkpoints/<sha256 of id>.json    one checkpoint per exporter

Stores written before used `streams/s_<quoted name>/` and `exports/<identifier>.json`; recovery renames
such a stream directory (one atomic rename), and a checkpoint moves when its exporter first loads it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

STREAMS_DIRECTORY = "streams"
DEFINITION_FILE = "definition.json"
CHECKPOINTS_DIRECTORY = "checkpoints"
LEGACY_CHECKPOINTS_DIRECTORY = "exports"
STREAM_DIRECTORY_PREFIX = "h_"
NAME_MAX_BYTES = 255  # of one path component, on Linux file systems


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def streams_directory(root: Path) -> Path:
    return root / STREAMS_DIRECTORY


def stream_directory(root: Path, name: str) -> Path:
    """The directory of the File stream called `name` (66 characters whatever the name)."""
    return streams_directory(root) / (STREAM_DIRECTORY_PREFIX + _digest(name))


def checkpoint_path(stream_dir: Path, identifier: str) -> Path:
    return stream_dir / CHECKPOINTS_DIRECTORY / f"{_digest(identifier)}.json"


def legacy_checkpoint_path(stream_dir: Path, identifier: str) -> Path | None:
    """Where the older layout kept this checkpoint; None where that name could never have been written."""
    file_name = f"{identifier}.json"
    if len(f"{file_name}.tmp".encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        return None
    return stream_dir / LEGACY_CHECKPOINTS_DIRECTORY / file_name
