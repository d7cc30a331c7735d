"""Feeds a calibration array to ONNX Runtime's static quantiser, one batch per `get_next` call."""

from __future__ import annotations

import numpy as np
from onnxruntime.quantization import CalibrationDataReader


class ArrayCalibrationReader(CalibrationDataReader):  # type: ignore[misc]  # untyped base class
    """Yields `{input_name: rows}` batches of `samples` (float32), `batch` rows at a time.

    With `fixed_batch` (a model whose batch dimension is a constant) a short last batch is dropped.
    """

    def __init__(self, input_name: str, samples: np.ndarray, batch: int, *, fixed_batch: bool) -> None:
        self._input_name = input_name
        self._samples = np.ascontiguousarray(samples, dtype=np.float32)
        self._batch = max(1, batch)
        self._fixed_batch = fixed_batch
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        rows = self._samples[self._next : self._next + self._batch]
        self._next += self._batch
        if rows.shape[0] == 0 or (self._fixed_batch and rows.shape[0] < self._batch):
            return None
        return {self._input_name: rows}

    def rewind(self) -> None:
        self._next = 0
