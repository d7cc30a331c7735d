"""Runs an ONNX model over a labelled set with ONNX Runtime (CPU) and measures its top-1 accuracy (a .tflite:
evaluate_litert.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeml.model.datasets import LabelledSet


def cpu_session(model_path: Path, intra_op_threads: int = 0) -> ort.InferenceSession:
    """A CPU InferenceSession; `intra_op_threads` > 0 pins ONNX Runtime's intra-op thread pool."""
    options = ort.SessionOptions()
    if intra_op_threads > 0:
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def batch_size_for(session: ort.InferenceSession, wanted: int) -> int:
    """`wanted`, unless the model's batch dimension is fixed, in which case that fixed size."""
    first_dim = session.get_inputs()[0].shape[0]
    return first_dim if isinstance(first_dim, int) and first_dim > 0 else wanted


def batches(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of `x` along its first axis, `size` rows each (the last may be shorter)."""
    for start in range(0, x.shape[0], size):
        yield x[start : start + size]


def predict_logits(session: ort.InferenceSession, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """The model's first output for every row of `x`, concatenated (rows padded for fixed-batch models)."""
    name = session.get_inputs()[0].name
    size = batch_size_for(session, batch)
    fixed = isinstance(session.get_inputs()[0].shape[0], int)
    outputs: list[np.ndarray] = []
    for chunk in batches(x.astype(np.float32, copy=False), size):
        rows = chunk.shape[0]
        if fixed and rows < size:  # a fixed batch dimension needs full batches: pad, then drop the padding
            chunk = np.concatenate([chunk, np.zeros((size - rows, *chunk.shape[1:]), np.float32)])
        result = np.asarray(session.run(None, {name: chunk})[0])
        outputs.append(result[:rows])
    return np.concatenate(outputs)


def onnx_top1(model_path: Path, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Highest-scoring class of every row of `x`, running `model_path` in ONNX Runtime on CPU."""
    predictions: np.ndarray = predict_logits(cpu_session(model_path), x, batch).argmax(axis=1)
    return predictions


def share_equal(predictions: np.ndarray, expected: np.ndarray) -> float:
    """Share of rows where `predictions` equals `expected` (top-1 accuracy against labels, or agreement)."""
    return float(np.mean(predictions == expected))


def top1_accuracy(model_path: Path, data: LabelledSet, batch: int = 64) -> float:
    """Share of `data` whose highest-scoring class is the label, running `model_path` on CPU."""
    return share_equal(onnx_top1(model_path, data.x, batch), data.y)


CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class DriftBaseline:
    """What the model predicts on held-out data, for drift (PSI) checks on the device.

    `class_frequencies[k]` is the share of predictions of class k; `confidence_frequencies[i]` the share
    of top-1 softmax probabilities in [bins[i], bins[i+1]) (the last bin includes 1.0).
    """

    class_frequencies: tuple[float, ...]
    confidence_bins: tuple[float, ...]
    confidence_frequencies: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "class_frequencies": list(self.class_frequencies),
            "confidence_bins": list(self.confidence_bins),
            "confidence_frequencies": list(self.confidence_frequencies),
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed stably in float64."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return result


def drift_baseline(logits: np.ndarray, classes: int, decimals: int = 4) -> DriftBaseline:
    """Predicted-class and top-1 confidence distributions of `logits` (rows = samples)."""
    probabilities = softmax(logits)
    predicted = probabilities.argmax(axis=1)
    class_counts = np.bincount(predicted, minlength=classes)
    confidence_counts, _ = np.histogram(probabilities.max(axis=1), bins=np.asarray(CONFIDENCE_BINS))
    rows = max(1, logits.shape[0])
    return DriftBaseline(
        class_frequencies=tuple(round(float(count) / rows, decimals) for count in class_counts),
        confidence_bins=CONFIDENCE_BINS,
        confidence_frequencies=tuple(round(float(count) / rows, decimals) for count in confidence_counts),
    )
