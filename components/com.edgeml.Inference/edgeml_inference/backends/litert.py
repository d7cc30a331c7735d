"""LiteRT (TensorFlow Lite) backend: a user's `.tflite` model runs as it is, on ai-edge-litert's Interpreter.

`ai-edge-litert` ships wheels for Python 3.10+ on linux x86_64 and aarch64 (none for armv7l: the Runtime
component installs it only there). It is imported lazily, so the app runs without it for ONNX and DLR models.
A quantized output (uint8/int8 with a scale) is dequantized, so post-processing always sees real values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeml_inference.backends.base import Backend
from edgeml_inference.exceptions import BackendUnavailable


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped]

        return Interpreter
    except ImportError as error:
        raise BackendUnavailable(
            "this model is a .tflite file but ai-edge-litert is not installed (no wheels for armv7l); "
            "install the com.edgeml.Runtime component for this platform"
        ) from error


class LiteRtBackend(Backend):
    """One `Interpreter` (XNNPACK CPU delegate, LiteRT's default) with `threads` threads (0: its default)."""

    name = "litert"

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        interpreter_class = _interpreter_class()
        try:
            self.interpreter: Any = interpreter_class(model_path=str(model_path), num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except Exception as error:  # LiteRT raises ValueError/RuntimeError with the reason
            raise BackendUnavailable(f"LiteRT cannot load {model_path.name}: {error}") from error
        (model_input,) = self.interpreter.get_input_details()[:1]
        model_output = self.interpreter.get_output_details()[0]
        self._input = int(model_input["index"])
        self._output = int(model_output["index"])
        self._batch = int(model_input["shape"][0])
        signature = model_input.get("shape_signature", model_input["shape"])
        self.fixed_batch = None if int(signature[0]) == -1 else self._batch
        scale, zero_point = model_output.get("quantization", (0.0, 0))
        self._dequantize = (float(scale), int(zero_point)) if scale else None
        self.providers = ("litert-cpu",)

    def run(self, batch: np.ndarray) -> np.ndarray:
        interpreter = self.interpreter
        if batch.shape[0] != self._batch:  # a dynamic batch dimension: resize to this batch
            interpreter.resize_tensor_input(self._input, list(batch.shape))
            interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        interpreter.set_tensor(self._input, batch)
        interpreter.invoke()
        output = interpreter.get_tensor(self._output)  # a copy: the next invoke does not overwrite it
        if self._dequantize is not None:
            scale, zero_point = self._dequantize
            return np.asarray((output.astype(np.float32) - np.float32(zero_point)) * np.float32(scale))
        return np.asarray(output)

    def close(self) -> None:
        self.interpreter = None
