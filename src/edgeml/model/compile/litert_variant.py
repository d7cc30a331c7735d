"""LiteRT variants of the local compiler: a .tflite source as it is, or an ONNX source written as .tflite.

Either way the variant must load in LiteRT's interpreter and run one sample; one written from ONNX must also
give the ONNX model's outputs (within float tolerance) on the same input, transposed NCHW -> NHWC.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgeml.errors import EdgemlError
from edgeml.model.evaluate import cpu_session
from edgeml.model.signature import ModelSignature, model_framework, tflite_interpreter
from edgeml.model.zoo.tflite_export import onnx_to_tflite

# float32 kernels differ between ONNX Runtime and XNNPACK in summation order only
AGREEMENT_ATOL = 1e-3
AGREEMENT_RTOL = 1e-3


class TfliteDisagrees(EdgemlError):
    """The .tflite written from an ONNX source does not give the source's outputs."""


def run_tflite(interpreter: Any, sample: np.ndarray) -> np.ndarray:
    """One invoke of `interpreter` on `sample` (its first input); its first output."""
    interpreter.set_tensor(int(interpreter.get_input_details()[0]["index"]), sample)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(int(interpreter.get_output_details()[0]["index"])))


def check_runs_in_litert(path: Path, shape: tuple[int, ...], dtype: str, what: str) -> None:
    """Loads `path` in LiteRT and runs one all-zero sample of `shape`; raises naming `what` if it cannot."""
    interpreter = tflite_interpreter(path)
    try:
        run_tflite(interpreter, np.zeros(shape, dtype=np.dtype(dtype)))
    except (ValueError, RuntimeError) as error:
        raise EdgemlError(f"{what}: does not run in LiteRT ({' '.join(str(error).split())})") from error


def nhwc_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(N, C, H, W) -> (N, H, W, C); other ranks as they are."""
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape


def make_litert_variant(source: Path, destination: Path, signature: ModelSignature) -> tuple[int, ...]:
    """Writes the litert-fp32 variant of `source` at `destination`; returns the variant's input shape."""
    if model_framework(source) == "tflite":
        shutil.copyfile(source, destination)
        check_runs_in_litert(destination, signature.input.shape, signature.input.dtype, f"{source}")
        return signature.input.shape
    if signature.input.dtype != "float32":
        raise EdgemlError(f"{source}: litert-fp32 needs a float32 input, not {signature.input.dtype}")
    onnx_to_tflite(source, destination)
    shape = nhwc_shape(signature.input.shape)
    check_runs_in_litert(destination, shape, "float32", f"{source}: variant litert-fp32")
    sample = np.random.default_rng(0).random(signature.input.shape, dtype=np.float32)
    expected = cpu_session(source).run(None, {signature.input.name: sample})[0]
    nhwc = np.ascontiguousarray(sample.transpose(0, 2, 3, 1)) if len(shape) == 4 else sample
    got = run_tflite(tflite_interpreter(destination), nhwc)
    if got.shape != np.shape(expected) or not np.allclose(got, expected, AGREEMENT_RTOL, AGREEMENT_ATOL):
        worst = float(np.max(np.abs(got - expected))) if got.shape == np.shape(expected) else float("nan")
        raise TfliteDisagrees(
            f"{source}: variant litert-fp32 disagrees with ONNX Runtime on the same input"
            f" (max |diff| {worst:.3g})"
        )
    return shape
