"""The result of one request, as published to every sink and returned by the HTTP endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeml_inference.postprocess import Prediction

_quote = json.encoder.encode_basestring_ascii


@dataclass(slots=True)
class InferenceResult:
    """One answer: `status` "ok" with a prediction, or "error" with a `reason` code and a `detail`."""

    request_id: str
    source: str
    status: str
    model: str = ""
    model_version: str = ""
    prediction: Prediction | None = None
    reason: str = ""
    detail: str = ""
    latency_ms: float = 0.0
    timestamp: float = field(default_factory=time.time)
    escalation: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def confidence(self) -> float | None:
        return self.prediction.confidence if self.prediction else None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": self.request_id,
            "source": self.source,
            "status": self.status,
            "model": self.model,
            "model_version": self.model_version,
            "latency_ms": round(self.latency_ms, 3),
            "timestamp": round(self.timestamp, 3),
        }
        if self.prediction is not None:
            body["label"] = self.prediction.label
            body["class_index"] = self.prediction.class_index
            body["confidence"] = self.prediction.confidence
            body["confident"] = self.prediction.confident
            body["top_k"] = [
                {"label": label, "index": index, "score": score}
                for label, index, score in self.prediction.top_k
            ]
        if self.status != "ok":
            body["reason"] = self.reason
            body["detail"] = self.detail
        if self.escalation is not None:
            body["escalation"] = self.escalation
        return body

    def to_json_bytes(self) -> bytes:
        """Compact JSON of `to_dict()`; ok results without escalation take a hand-written fast path."""
        return encode_results([self])[0]


def _plain_json(result: InferenceResult) -> bytes:
    return json.dumps(result.to_dict(), separators=(",", ":")).encode("utf-8")


def encode_results(results: Sequence[InferenceResult]) -> list[bytes]:
    """Compact JSON of each result's `to_dict()`, for a whole batch in one pass: the parts a batch repeats
    (source/model/version, each top-k entry's label and index, the timestamp) are built once per distinct
    value, ok results take a hand-written template, the rest (errors, escalations) go through json.dumps."""
    middles: dict[tuple[str, str, str], str] = {}
    entries: dict[tuple[str, int], str] = {}
    labels: dict[str, str] = {}
    stamps: dict[float, str] = {}
    encoded: list[bytes] = []
    for result in results:
        prediction = result.prediction
        if prediction is None or result.escalation is not None or result.status != "ok":
            encoded.append(_plain_json(result))
            continue
        shared = (result.source, result.model, result.model_version)
        middle = middles.get(shared)
        if middle is None:
            middle = middles[shared] = (
                f',"source":{_quote(shared[0])},"status":"ok","model":{_quote(shared[1])},'
                f'"model_version":{_quote(shared[2])},"latency_ms":'
            )
        stamp = stamps.get(result.timestamp)
        if stamp is None:
            stamp = stamps[result.timestamp] = f',"timestamp":{round(result.timestamp, 3)!r},"label":'
        parts: list[str] = []
        for label, index, score in prediction.top_k:
            entry = entries.get((label, index))
            if entry is None:
                entry = entries[(label, index)] = f'{{"label":{_quote(label)},"index":{index},"score":'
            parts.append(f"{entry}{score!r}}}")
        top_label = labels.get(prediction.label)
        if top_label is None:
            top_label = labels[prediction.label] = _quote(prediction.label)
        text = (
            f'{{"request_id":{_quote(result.request_id)}{middle}{round(result.latency_ms, 3)!r}'
            f"{stamp}{top_label},"
            f'"class_index":{prediction.class_index},"confidence":{prediction.confidence!r},'
            f'"confident":{"true" if prediction.confident else "false"},"top_k":[{",".join(parts)}]}}'
        )
        encoded.append(text.encode("ascii"))
    return encoded


class ResultBatch:
    """The results of one batch handed to the sinks together: one offer per sink per batch, encoded to JSON
    once, in one pass, by the first sink worker that needs the bytes (off the inference thread)."""

    __slots__ = ("_encoded", "results")

    def __init__(self, results: Sequence[InferenceResult]) -> None:
        self.results = results
        self._encoded: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.results)

    def payloads(self) -> list[bytes]:
        if self._encoded is None:
            self._encoded = encode_results(self.results)
        return self._encoded


def error_result(request_id: str, source: str, reason: str, detail: str, **extra: Any) -> InferenceResult:
    return InferenceResult(request_id, source, "error", reason=reason, detail=detail, **extra)
