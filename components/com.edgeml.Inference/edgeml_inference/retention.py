"""Retention of the directory source's done/ and failed/ folders: by count and by age.

Only what the app put there is removed: an input file it moved in together with the `<name>.json` result
it wrote beside it. A file someone else left in done/ (no result beside it) is never touched. An entry's age
is that of its result file (written when the input was answered).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

_log = logging.getLogger(__name__)
RESULT_SUFFIX = ".json"


def answered_entries(folder: Path) -> list[tuple[float, Path, Path]]:
    """(result mtime, input, result) for every answered input in `folder`, oldest first."""
    entries: list[tuple[float, Path, Path]] = []
    try:
        names = set(os.listdir(folder))
    except OSError:
        return []
    for name in names:
        if not name.endswith(RESULT_SUFFIX):
            continue
        source = name[: -len(RESULT_SUFFIX)]
        if source not in names:
            continue
        result = folder / name
        try:
            entries.append((result.stat().st_mtime, folder / source, result))
        except OSError:
            continue
    entries.sort()
    return entries


def prune(folder: Path, keep_count: int, max_age_s: float, now: float | None = None) -> int:
    """Removes answered inputs beyond the newest `keep_count` (0: no count limit) or older than `max_age_s`
    seconds (0: no age limit); returns how many inputs went."""
    if keep_count <= 0 and max_age_s <= 0:
        return 0
    entries = answered_entries(folder)
    now = time.time() if now is None else now
    doomed = len(entries) - keep_count if keep_count > 0 else 0
    removed = 0
    for index, (stamp, source, result) in enumerate(entries):
        if index >= doomed and not (max_age_s > 0 and now - stamp > max_age_s):
            continue
        try:
            source.unlink(missing_ok=True)
            result.unlink(missing_ok=True)
            removed += 1
        except OSError as error:
            _log.warning("cannot remove %s: %s", source, error)
    return removed
