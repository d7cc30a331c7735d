"""Inference backends behind one interface (`Backend`), chosen by metadata.json `framework`."""

from __future__ import annotations

from pathlib import Path

from edgeml_inference.backends.base import Backend
from edgeml_inference.exceptions import BackendUnavailable
from edgeml_inference.metadata import ModelMetadata

__all__ = ["Backend", "open_backend"]


def open_backend(
    directory: Path, metadata: ModelMetadata, providers: tuple[str, ...], intra_op_threads: int
) -> Backend:
    """The backend for `metadata.framework`: "onnx" -> ONNX Runtime, "dlr" -> DLR, "tflite" -> LiteRT."""
    if metadata.framework == "onnx":
        from edgeml_inference.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(
            directory / metadata.model_file, metadata.input_name, providers, intra_op_threads
        )
    if metadata.framework == "dlr":
        from edgeml_inference.backends.dlr import DlrBackend

        device = "gpu" if any(name in ("CUDA", "TensorRT") for name in providers) else "cpu"
        batch = metadata.input_shape[0] if metadata.input_shape else None
        fixed = batch if isinstance(batch, int) and batch > 0 else None
        return DlrBackend((directory / metadata.model_file).resolve(), metadata.input_name, device, fixed)
    if metadata.framework == "tflite":
        from edgeml_inference.backends.litert import LiteRtBackend

        return LiteRtBackend(directory / metadata.model_file, intra_op_threads)
    raise BackendUnavailable(f"unknown framework {metadata.framework!r} in metadata.json")
