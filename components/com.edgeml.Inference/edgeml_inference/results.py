"""The result of one request, as published to every sink and returned by the HTTP endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeml_inference.postprocess import Prediction

_quote = json.encoder.encode_basestring_ascii


def float32_score(value: float) -> float:
    """A score as results carry it: the model's float32 value to 9 significant digits (the same float32),
    so that the JSON (`%.9g`, see encode_results) and to_dict() hold the same number."""
    return float(f"{value:.9g}")


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
            body["confidence"] = float32_score(self.prediction.confidence)
            body["confident"] = self.prediction.confident
            body["top_k"] = [
                {"label": label, "index": index, "score": float32_score(score)}
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


def _ok_template(result: InferenceResult, top_k: int) -> str:
    """The %-template of an ok result's JSON: what a batch repeats written once; request_id, latency,
    label, class index, confidence, confident and each top-k entry's label, index and score are the holes."""
    entry = '{"label":%s,"index":%d,"score":%.9g}'
    return (
        f'{{"request_id":%s,"source":{_percent(_quote(result.source))},"status":"ok",'
        f'"model":{_percent(_quote(result.model))},"model_version":{_percent(_quote(result.model_version))},'
        f'"latency_ms":%.3f,"timestamp":{round(result.timestamp, 3)!r},"label":%s,"class_index":%d,'
        f'"confidence":%.9g,"confident":%s,"top_k":[{",".join([entry] * top_k)}]}}'
    )


def _percent(text: str) -> str:
    return text.replace("%", "%%")


def encode_results(results: Sequence[InferenceResult]) -> list[bytes]:
    """Compact JSON of each result's `to_dict()`, for a whole batch in one pass.

    Ok results without escalation go through one %-template per distinct (source, model, version,
    timestamp, k), filled in C: scores and confidence are the model's float32 values, written with 9
    significant digits (`%.9g`, which gives back the same float32) instead of the 17 of a widened float64's
    repr; latency_ms is written to 3 decimals, as to_dict rounds it. The rest (errors, escalations) go
    through json.dumps."""
    templates: dict[tuple[str, str, str, float, int], str] = {}
    quoted: dict[str, str] = {}
    encoded: list[bytes] = []
    for result in results:
        prediction = result.prediction
        if prediction is None or result.escalation is not None or result.status != "ok":
            encoded.append(_plain_json(result))
            continue
        top = prediction.top_k
        key = (result.source, result.model, result.model_version, result.timestamp, len(top))
        template = templates.get(key)
        if template is None:
            template = templates[key] = _ok_template(result, len(top))
        label = quoted.get(prediction.label)
        if label is None:
            label = quoted[prediction.label] = _quote(prediction.label)
        holes: list[object] = [
            _quote(result.request_id),
            result.latency_ms,
            label,
            prediction.class_index,
            prediction.confidence,
            "true" if prediction.confident else "false",
        ]
        for entry_label, index, score in top:
            text = quoted.get(entry_label)
            if text is None:
                text = quoted[entry_label] = _quote(entry_label)
            holes += (text, index, score)
        encoded.append((template % tuple(holes)).encode("ascii"))
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
