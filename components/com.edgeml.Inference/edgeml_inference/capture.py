"""Low-confidence capture: a sample of the inputs under the confidence threshold, kept within a disk budget
and exported to S3 through the capture stream (one S3ExportTaskDefinition per file). A file is deleted once
Stream Manager reports it exported (capture_cleanup.py), so the budget bounds only what waits for export."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgeml_inference.config import AppConfig
from edgeml_inference.preprocess import Payload
from edgeml_inference.results import InferenceResult

_log = logging.getLogger(__name__)
_SUFFIXES = {
    b"\x93NUMPY": ".npy",
    b"\x89PNG": ".png",
    b"\xff\xd8\xff": ".jpg",
    b"GIF8": ".gif",
    b"BM": ".bmp",
    b"{": ".json",
}


CAPTURE_SUFFIXES = (*_SUFFIXES.values(), ".bin")


def encode_npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def suffix_for(payload: bytes) -> str:
    for magic, suffix in _SUFFIXES.items():
        if payload.startswith(magic):
            return suffix
    return ".bin"


class LowConfidenceCapture:
    """Decides which inputs to keep and writes them; `export(path, key)` queues the S3 upload task."""

    def __init__(
        self,
        config: Callable[[], AppConfig],
        export: Callable[[Path, str], None] | None,
        device: str = "device",
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.export = export
        self.device = device
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._used: int | None = None
        self.captured = 0
        self.over_budget = 0
        self.exported_removed = 0

    def active(self) -> bool:
        """Capture is on (a bucket and a sample rate): a batch is looked at result by result only then."""
        config = self.config()
        return bool(config.capture_bucket) and config.capture_sample_rate > 0

    def wants(self, result: InferenceResult) -> bool:
        """Under the threshold, capture on, and the sample drawn."""
        config = self.config()
        confidence = result.confidence
        return (
            self.active()
            and confidence is not None
            and confidence < config.confidence_threshold
            and self.rng.random() < config.capture_sample_rate
        )

    def remove_exported(self, path: Path) -> bool:
        """Deletes a captured file Stream Manager exported, giving its bytes back to the budget; False when
        `path` is not a file of the capture folder (the app deletes only what it wrote)."""
        folder = Path(self.config().capture_root()).resolve()
        try:
            if path.resolve().parent != folder or not path.name.endswith(CAPTURE_SUFFIXES):
                return False
            size = path.stat().st_size
            path.unlink()
        except OSError:
            return False
        with self._lock:
            if self._used is not None:
                self._used = max(0, self._used - size)
        self.exported_removed += 1
        return True

    def __call__(self, result: InferenceResult, payload: Payload) -> None:
        if self.wants(result):
            self.store(result, payload)

    def store(self, result: InferenceResult, payload: Payload) -> Path | None:
        """Writes the input if the budget allows; returns its path (None when over budget)."""
        if isinstance(payload, np.ndarray):
            payload = encode_npy(payload)
        config = self.config()
        directory = Path(config.capture_root())
        with self._lock:
            if self._used is None:
                directory.mkdir(parents=True, exist_ok=True)
                self._used = sum(path.stat().st_size for path in directory.iterdir() if path.is_file())
            if self._used + len(payload) > config.capture_disk_budget_bytes:
                self.over_budget += 1
                return None
            self._used += len(payload)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(result.timestamp))
        name = f"{stamp}-{result.request_id}{suffix_for(payload)}"
        path = directory / name
        partial = path.with_name(name + ".part")
        partial.write_bytes(payload)
        partial.rename(path)
        self.captured += 1
        if self.export is not None:
            label = result.prediction.label if result.prediction else "none"
            key = f"{config.capture_key_prefix.strip('/')}/{self.device}/{label}/{name}".lstrip("/")
            self.export(path, key)
        return path
