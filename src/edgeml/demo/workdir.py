"""The demo's scratch folder (--work): emptied only when the demo itself created it.

A folder the demo creates gets a marker file. A later run empties a folder only if it holds that marker
(or is empty); any other folder, and the repository, its ancestors, $HOME and `/`, are refused before
anything is touched. Relative --work / --json paths are taken from the caller's working directory:
scripts/demo changes into the repository first and passes the caller's in EDGEML_CALLER_CWD.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from edgeml.errors import EdgemlError

MARKER = ".edgeml-demo-work"
MARKER_TEXT = "Scratch folder of scripts/demo; the next run empties it. Delete this file to keep it.\n"
CALLER_CWD_ENV = "EDGEML_CALLER_CWD"
# Keys every summary the demo writes has; an existing --json file without them is not the demo's.
SUMMARY_KEYS = frozenset({"variants", "components", "results", "app_exit_code"})


class UnsafeWorkFolder(EdgemlError):
    """--work names a folder the demo did not create, or one whose loss would take other data with it."""


class UnsafeSummaryPath(EdgemlError):
    """--json names a directory or a file the demo did not write."""


def caller_path(path: Path) -> Path:
    """`path` made absolute against the caller's working directory (EDGEML_CALLER_CWD, else the cwd)."""
    base = Path(os.environ.get(CALLER_CWD_ENV) or Path.cwd())
    return Path(os.path.abspath(base / path.expanduser()))


def _protected(repo: Path) -> dict[Path, str]:
    protected = {Path("/"): "the file system root", Path.home().resolve(): "your home folder"}
    resolved = repo.resolve()
    protected[resolved] = "the repository"
    for parent in resolved.parents:
        protected.setdefault(parent, "a folder holding the repository")
    return protected


def check_work_folder(work: Path, repo: Path) -> Path:
    """The resolved --work folder if the demo may create or empty it; else raises, touching nothing."""
    resolved = work.resolve()
    reason = _protected(repo).get(resolved)
    if reason is not None:
        raise UnsafeWorkFolder(f"--work {work}: refusing to empty {reason}; give a new or empty folder")
    if not resolved.exists():
        return resolved
    if not resolved.is_dir():
        raise UnsafeWorkFolder(f"--work {work}: exists and is not a folder")
    if not (resolved / MARKER).is_file() and any(resolved.iterdir()):
        raise UnsafeWorkFolder(
            f"--work {work}: holds files the demo did not create (no {MARKER}); give a new or empty folder"
        )
    return resolved


def prepare_work_folder(work: Path) -> None:
    """Creates (or empties) a folder check_work_folder accepted and marks it as the demo's."""
    work.mkdir(parents=True, exist_ok=True)
    for entry in work.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (work / MARKER).write_text(MARKER_TEXT, encoding="utf-8")


def check_summary_path(path: Path) -> Path:
    """Returns `path` if the summary may be written there: a new file, or an earlier demo summary."""
    if path.is_dir():
        raise UnsafeSummaryPath(f"--json {path}: is a folder; give a file name")
    if path.exists():
        try:
            earlier = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            earlier = None
        if not isinstance(earlier, dict) or not set(earlier) >= SUMMARY_KEYS:
            raise UnsafeSummaryPath(f"--json {path}: exists and is not a demo summary; not overwriting it")
    blocking = next((parent for parent in path.parents if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UnsafeSummaryPath(f"--json {path}: {blocking} is not a folder")
    return path
