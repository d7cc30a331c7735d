"""Model output -> prediction: softmax, top-k, threshold, NaN check (metadata.json + configuration)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edgeml_inference.exceptions import BadOutput


class Prediction(NamedTuple):
    """The top-k classes of one sample, best first; `confident` is top-1 >= the threshold.

    A NamedTuple: built once per sample, it costs a tuple, not a frozen dataclass's per-field setattr."""

    label: str
    class_index: int
    confidence: float
    top_k: tuple[tuple[str, int, float], ...]
    confident: bool


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits)
    exp: np.ndarray = np.exp(logits - logits.max(axis=-1, keepdims=True))
    exp /= exp.sum(axis=-1, keepdims=True)
    return exp


_ROWS = np.arange(256)[:, None]  # row index of a batch, for picking per-row columns
_FULL_SORT_UP_TO = 64  # classes; beyond, top-k partitions first


class Postprocessor:
    """Turns a batch of model outputs into Predictions."""

    def __init__(self, labels: tuple[str, ...], apply_softmax: bool) -> None:
        self.labels = labels
        self.apply_softmax = apply_softmax

    def __call__(self, outputs: np.ndarray, top_k: int, threshold: float) -> list[Prediction | BadOutput]:
        """One entry per sample: a Prediction, or the BadOutput explaining why that sample has none."""
        scores = np.asarray(outputs, dtype=np.float32).reshape(outputs.shape[0], -1)
        count, classes = scores.shape
        finite_rows: list[bool] | None = None  # None: every row is finite (one check for the batch)
        if not np.isfinite(scores).all():
            finite = np.asarray(np.isfinite(scores).all(axis=1))
            finite_rows = [bool(ok) for ok in finite]
            scores = np.where(finite[:, None], scores, np.float32(0.0))
        probabilities = softmax(scores) if self.apply_softmax else scores
        k = max(1, min(top_k, classes))
        rows = _ROWS[:count] if count <= len(_ROWS) else np.arange(count)[:, None]
        # Plain fancy indexing with a cached row index: np.take_along_axis does the same through a Python
        # wrapper that cost more than the rest of the post-processing of a small model.
        if k == 1:
            order = probabilities.argmax(axis=1)[:, None]
        elif k < classes and classes > _FULL_SORT_UP_TO:  # partial sort: the k best of e.g. 1000 classes
            best = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
            ranked = (-probabilities[rows, best]).argsort(axis=1, kind="stable")
            order = best[rows, ranked]
        else:  # a few classes: a full stable sort is cheaper than a partition, and breaks ties by index
            order = (-probabilities).argsort(axis=1, kind="stable")[:, :k]
        top_scores = probabilities[rows, order].tolist()
        names = self._names(classes)
        results: list[Prediction | BadOutput] = []
        for row, indices in enumerate(order.tolist()):
            if finite_rows is not None and not finite_rows[row]:
                results.append(BadOutput("nan_output", "the model output holds NaN or infinity"))
                continue
            pairs = zip(indices, top_scores[row], strict=True)
            top = tuple([(names[index], index, score) for index, score in pairs])
            label, index, confidence = top[0]
            results.append(Prediction(label, index, confidence, top, confidence >= threshold))
        return results

    def _names(self, classes: int) -> tuple[str, ...]:
        """A label per class index: the model's labels, then the index itself past them."""
        labels = self.labels
        if classes <= len(labels):
            return labels
        return (*labels, *map(str, range(len(labels), classes)))
