"""Image directory source: each new file is inferred once, then moved to done/ or failed/.

A file is taken only once it is complete: names ending in .tmp/.part or starting with "." are skipped, and a
file must keep the same size and mtime across two scans (or be older than `settle_s`).
done/ and failed/ are pruned by `retention()` = (inputs kept per folder, hours kept), 0 for no limit: after
a scan that moved files, and at least every PRUNE_EVERY_S (for the age limit).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edgeml_inference.answer import Answer
from edgeml_inference.retention import prune
from edgeml_inference.sources.base import Source, Submit, SubmitGroup

_log = logging.getLogger(__name__)
RESULT_TIMEOUT_S = 120.0
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
PRUNE_EVERY_S = 60.0
RETRY_REASONS = frozenset({"shutting_down", "overloaded"})


class DirectorySource(Source):
    """Scans `root` every `period()` seconds; results' JSON is written beside the moved file (name.json)."""

    name = "directory"

    def __init__(
        self,
        root: Path,
        submit: Submit,
        period: Callable[[], float],
        max_file_bytes: Callable[[], int],
        settle_s: float = 1.0,
        submit_group: SubmitGroup | None = None,
        retention: Callable[[], tuple[int, float]] = lambda: (0, 0.0),
    ) -> None:
        """`submit_group`, when given, queues one scan's files together (they share batches)."""
        self.root = root
        self.submit = submit
        self.submit_group = submit_group
        self.period = period
        self.settle_s = settle_s
        self.max_file_bytes = max_file_bytes
        self.done = root / "done"
        self.failed = root / "failed"
        self._seen: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.retention = retention
        self.pruned = 0
        self._pruned_at = 0.0

    def start(self) -> None:
        for folder in (self.root, self.done, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="source-directory", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan_once()
            except Exception:
                _log.exception("directory scan failed")
            self._stop.wait(self.period())

    def ready_files(self) -> list[Path]:
        """Complete files not yet processed, oldest first."""
        now = time.time()
        ready: list[tuple[float, Path]] = []
        current: dict[str, tuple[int, int]] = {}
        with os.scandir(self.root) as entries:
            for entry in entries:
                if not entry.is_file(follow_symlinks=False) or entry.name.startswith("."):
                    continue
                if entry.name.endswith(PARTIAL_SUFFIXES):
                    continue
                stat = entry.stat(follow_symlinks=False)
                signature = (stat.st_size, stat.st_mtime_ns)
                current[entry.name] = signature
                stable = self._seen.get(entry.name) == signature
                if stable or now - stat.st_mtime >= self.settle_s:
                    ready.append((stat.st_mtime, Path(entry.path)))
        self._seen = current
        return [path for _, path in sorted(ready)]

    def scan_once(self) -> int:
        """Submits every ready file, waits for the answers, moves the files; returns how many."""
        paths: list[Path] = []
        items: list[tuple[bytes, str]] = []
        for path in self.ready_files():
            try:
                limit = self.max_file_bytes() + 1  # an oversized file is read only far enough to be refused
                with path.open("rb") as handle:
                    items.append((handle.read(limit), f"file:{path.name}"))
            except OSError as error:
                _log.warning("cannot read %s: %s", path, error)
                continue
            paths.append(path)
        if self.submit_group is not None:
            futures = self.submit_group(items)
        else:
            futures = [self.submit(payload, source) for payload, source in items]
        pending: list[tuple[Path, Answer]] = list(zip(paths, futures, strict=True))
        for path, future in pending:
            try:
                result = future.result(RESULT_TIMEOUT_S)
            except TimeoutError:
                _log.warning(
                    "no answer for %s within %.0f s; it stays for the next scan", path, RESULT_TIMEOUT_S
                )
                self._seen.pop(path.name, None)
                continue
            if not result.ok and result.reason in RETRY_REASONS:
                # not answered by a model (the app is stopping, e.g. for a model update, or the queue was
                # full): the file stays for the next scan or the next start
                self._seen.pop(path.name, None)
                continue
            target = (self.done if result.ok else self.failed) / path.name
            try:
                os.replace(path, target)
                target.with_name(target.name + ".json").write_bytes(result.to_json_bytes())
            except OSError as error:
                _log.warning("cannot move %s: %s", path, error)
            self._seen.pop(path.name, None)
            self.processed += 1
        if pending or time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
            self.prune()
        return len(pending)

    def prune(self) -> int:
        """Applies the retention to done/ and failed/; returns how many inputs were removed."""
        self._pruned_at = time.monotonic()
        keep_count, keep_hours = self.retention()
        removed = sum(prune(folder, keep_count, keep_hours * 3600.0) for folder in (self.done, self.failed))
        self.pruned += removed
        return removed
