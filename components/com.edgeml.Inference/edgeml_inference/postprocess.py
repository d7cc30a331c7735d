"""Model output -> prediction: softmax, top-k, threshold, NaN check (metadata.json + configuration)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeml_inference.exceptions import BadOutput


@dataclass(frozen=True)
class Prediction:
    """The top-k classes of one sample, best first; `confident` is top-1 >= the threshold."""

    label: str
    class_index: int
    confidence: float
    top_k: tuple[tuple[str, int, float], ...]
    confident: bool


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / np.sum(exp, axis=-1, keepdims=True)
    return result


class Postprocessor:
    """Turns a batch of model outputs into Predictions."""

    def __init__(self, labels: tuple[str, ...], apply_softmax: bool) -> None:
        self.labels = labels
        self.apply_softmax = apply_softmax

    def __call__(self, outputs: np.ndarray, top_k: int, threshold: float) -> list[Prediction | BadOutput]:
        """One entry per sample: a Prediction, or the BadOutput explaining why that sample has none."""
        scores = np.asarray(outputs, dtype=np.float32).reshape(outputs.shape[0], -1)
        finite = np.asarray(np.isfinite(scores).all(axis=1))
        all_finite = bool(finite.all())
        if not all_finite:
            scores = np.where(finite[:, None], scores, 0.0)
        probabilities = softmax(scores) if self.apply_softmax else scores
        k = max(1, min(top_k, scores.shape[1]))
        if k == 1:
            order = probabilities.argmax(axis=1)[:, None]
        elif k < probabilities.shape[1]:  # partial sort: only the k best of possibly 1000 classes are ordered
            best = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
            ranked = np.argsort(-np.take_along_axis(probabilities, best, axis=1), axis=1, kind="stable")
            order = np.take_along_axis(best, ranked, axis=1)
        else:
            order = np.argsort(-probabilities, axis=1, kind="stable")
        top_scores = np.take_along_axis(probabilities, order, axis=1).tolist()
        finite_rows = finite.tolist()
        results: list[Prediction | BadOutput] = []
        for row, indices in enumerate(order.tolist()):
            if not finite_rows[row]:
                results.append(BadOutput("nan_output", "the model output holds NaN or infinity"))
                continue
            top = tuple(
                (self._label(index), index, score)
                for index, score in zip(indices, top_scores[row], strict=True)
            )
            label, index, confidence = top[0]
            results.append(Prediction(label, index, confidence, top, confidence >= threshold))
        return results

    def _label(self, index: int) -> str:
        return self.labels[index] if index < len(self.labels) else str(index)
