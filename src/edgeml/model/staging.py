"""All-or-nothing output directories: build in a staging folder beside the target, move in on success."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeml.errors import EdgemlError


class OutputNotADirectory(EdgemlError):
    """The output path names something that is not a directory (a file, a broken link)."""


def check_output_dir(out_dir: Path, option: str = "--out") -> Path:
    """Returns `out_dir` if it is a directory or can be made one; else raises OutputNotADirectory.

    Checked before any work, so a command never computes a result it cannot write.
    """
    if out_dir.is_symlink() and not out_dir.exists():
        raise OutputNotADirectory(f"{option} {out_dir}: a broken symbolic link, not a directory")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputNotADirectory(f"{option} {out_dir}: exists and is not a directory")
    blocking = next((parent for parent in out_dir.absolute().parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise OutputNotADirectory(f"{option} {out_dir}: {blocking} is not a directory")
    return out_dir


def _merge_files(stage: Path, out_dir: Path) -> None:
    for source in sorted(path for path in stage.rglob("*") if path.is_file()):
        destination = out_dir / source.relative_to(stage)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)


def _replace_entries(stage: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for source in sorted(stage.iterdir()):
        destination = out_dir / source.name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        os.replace(source, destination)


@contextmanager
def staged_output(out_dir: Path, *, merge: bool) -> Iterator[Path]:
    """Yields an empty staging directory beside `out_dir`; `out_dir` changes only if the block succeeds.

    On success each staged file is moved into `out_dir` (created if needed): with `merge`, file by file
    (other files already there stay); without, each top-level entry replaces the one of the same name.
    On any error (Ctrl-C included) the staging directory is removed and `out_dir` is left as it was.
    """
    check_output_dir(out_dir)
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=parent))
    try:
        yield stage
        if merge:
            _merge_files(stage, out_dir)
        else:
            _replace_entries(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
