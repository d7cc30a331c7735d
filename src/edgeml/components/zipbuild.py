"""gdk's `zip` build system without gdk: the component folder zipped, gdk's excludes applied, byte-stable.

gdk 1.6.2 (gdk/build_system/Zip.py) expands each exclude pattern with `glob.glob(root/pattern,
recursive=True)`, leaves every matched file or folder out of a copy of the project folder, and zips
that copy with the folder's contents at the zip root. The same expansion is used here; the zip itself
is written directly and deterministically (sorted entries, 1980-01-01 timestamps, fixed modes), so
re-building identical sources gives identical bytes and the same Greengrass digest.
"""

from __future__ import annotations

import glob
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

_EPOCH = (1980, 1, 1, 0, 0, 0)


def excluded_paths(root: Path, patterns: Iterable[str]) -> set[Path]:
    """Every path under `root` that one of gdk's glob `patterns` matches."""
    matched: set[Path] = set()
    for pattern in patterns:
        matched.update(Path(hit) for hit in glob.glob(f"{root}{os.sep}{pattern}", recursive=True))
    return matched


def zip_entries(root: Path, patterns: Iterable[str]) -> list[tuple[str, Path]]:
    """(archive name, source path) of every file and folder that goes into the zip, sorted."""
    excluded = excluded_paths(root, patterns)
    entries: list[tuple[str, Path]] = []
    for directory, folders, files in os.walk(root, followlinks=True):
        here = Path(directory)
        folders[:] = sorted(name for name in folders if here / name not in excluded)
        for name in folders:
            entries.append(((here / name).relative_to(root).as_posix() + "/", here / name))
        for name in sorted(files):
            if here / name not in excluded:
                entries.append(((here / name).relative_to(root).as_posix(), here / name))
    return sorted(entries)


def write_zip(root: Path, target: Path, patterns: Iterable[str]) -> list[str]:
    """Zips `root` into `target` without the excluded paths; returns the archive names written."""
    entries = zip_entries(root, patterns)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode
            if name.endswith("/"):
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
                continue
            mode = 0o755 if os.access(source, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    return [name for name, _ in entries]
