"""Runs a .tflite model over held-out samples with LiteRT's interpreter, as the device app runs it (XNNPACK,
one thread), for the same top-1 figures evaluate.py gives ONNX variants.

Samples come in the source's layout: as they are when they fit the model's input, else NCHW samples are
transposed to the model's NHWC input (a .tflite written from ONNX, or a .tflite scored on NCHW data such as
the digits set). The model's own batch size is used (a fixed batch of 1 runs one sample per invoke); a short
last batch is padded with zeros and the padding's outputs dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeml.errors import EdgemlError
from edgeml.model.compile.litert_variant import nhwc_shape, run_tflite
from edgeml.model.evaluate import batches, onnx_top1, share_equal
from edgeml.model.signature import model_framework, tflite_interpreter


class SamplesDoNotFit(EdgemlError):
    """The held-out samples fit the .tflite model's input neither as they are nor transposed to NHWC."""


def fit_to_input(x: np.ndarray, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """`x` (N x sample) as the model input of `shape` takes it: as it is, or NCHW -> NHWC; cast to `dtype`."""
    if tuple(x.shape[1:]) != tuple(shape[1:]):
        if x.ndim != 4 or nhwc_shape(tuple(x.shape))[1:] != tuple(shape[1:]):
            raise SamplesDoNotFit(
                f"held-out samples have shape {list(x.shape[1:])}; the .tflite input needs {list(shape[1:])}"
                " (or its NCHW transpose)"
            )
        x = x.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x, dtype=np.dtype(dtype))


def litert_logits(model_path: Path, x: np.ndarray) -> np.ndarray:
    """The model's first output for every row of `x`, concatenated, run batch by batch in LiteRT."""
    interpreter = tflite_interpreter(model_path, xnnpack=True)
    detail = interpreter.get_input_details()[0]
    shape = tuple(int(dim) for dim in detail["shape"])
    samples = fit_to_input(x, shape, np.dtype(detail["dtype"]).name)
    size = shape[0]
    outputs: list[np.ndarray] = []
    for chunk in batches(samples, size):
        rows = chunk.shape[0]
        if rows < size:
            chunk = np.concatenate([chunk, np.zeros((size - rows, *chunk.shape[1:]), chunk.dtype)])
        outputs.append(run_tflite(interpreter, chunk)[:rows])
    return np.concatenate(outputs)


def litert_top1(model_path: Path, x: np.ndarray) -> np.ndarray:
    """Highest-scoring class of every row of `x` (a quantised output's argmax is its real values' argmax)."""
    predictions: np.ndarray = litert_logits(model_path, x).argmax(axis=1)
    return predictions


@dataclass(frozen=True)
class LitertAgreement:
    """A .tflite written from ONNX against the ONNX source in ONNX Runtime, on the held-out samples."""

    target: str
    samples: int
    agreement: float  # share of samples with the same top-1 class
    litert_accuracy: float | None  # with labels only
    onnx_accuracy: float | None

    def summary(self) -> str:
        text = (
            f"{self.target} (LiteRT) vs the ONNX source (ONNX Runtime, FP32): top-1 agreement"
            f" {self.agreement:.2%} on {self.samples} held-out samples"
        )
        if self.litert_accuracy is not None and self.onnx_accuracy is not None:
            text += f"; accuracy LiteRT {self.litert_accuracy:.2%}, ONNX Runtime {self.onnx_accuracy:.2%}"
        return text


def score_litert_variant(
    target: str, variant: Path, source: Path, x: np.ndarray, y: np.ndarray | None
) -> tuple[float | None, LitertAgreement | None]:
    """The variant's top-1 accuracy in LiteRT on held-out samples `x` (None without labels `y`) and, for an
    ONNX source, its agreement with that source run in ONNX Runtime on them (None for a .tflite source:
    nothing to compare with)."""
    predicted = litert_top1(variant, x)
    accuracy = None if y is None else share_equal(predicted, y)
    if model_framework(source) != "onnx":
        return accuracy, None
    reference = onnx_top1(source, x)
    agreement = LitertAgreement(
        target=target,
        samples=int(x.shape[0]),
        agreement=share_equal(predicted, reference),
        litert_accuracy=accuracy,
        onnx_accuracy=None if y is None else share_equal(reference, y),
    )
    return accuracy, agreement
