"""Every ONNX model the local compiler takes in or writes out must load in ONNX Runtime and run a sample.

onnx.load accepts graphs ONNX Runtime refuses (a node reading a tensor nobody produces, an unknown
operator, a bad shape); without this check such a file passed `-t cpu-fp32` unchanged and was packaged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeml.errors import EdgemlError
from edgeml.model.evaluate import cpu_session
from edgeml.model.signature import ModelSignature

_ORT_PREFIX = "[ONNXRuntimeError] : "


class ModelDoesNotRun(EdgemlError):
    """ONNX Runtime cannot load the model or run one sample through it."""


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    if _ORT_PREFIX in text:  # "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Load model from ... failed:..."
        text = text.split(_ORT_PREFIX, 1)[1].split(" : ", 2)[-1]
    return f"{type(error).__name__}: {text}"


def check_runs(path: Path, signature: ModelSignature, what: str) -> None:
    """Loads `path` in ONNX Runtime (CPU) and runs one all-zero sample of the signature's input."""
    try:
        session = cpu_session(path)
        sample = np.zeros(signature.input.shape, dtype=np.dtype(signature.input.dtype))
        session.run(None, {signature.input.name: sample})
    except Exception as error:  # onnxruntime raises its own Fail / InvalidGraph / InvalidArgument / ...
        reason = _one_line(error)
        raise ModelDoesNotRun(f"{what}: does not load and run in ONNX Runtime ({reason})") from error
