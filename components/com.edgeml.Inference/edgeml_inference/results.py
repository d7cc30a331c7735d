"""The result of one request, as published to every sink and returned by the HTTP endpoint."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from edgeml_inference.postprocess import Prediction

_quote = json.encoder.encode_basestring_ascii


@dataclass
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
        prediction = self.prediction
        if prediction is None or self.escalation is not None or self.status != "ok":
            return json.dumps(self.to_dict(), separators=(",", ":")).encode("utf-8")
        confident = "true" if prediction.confident else "false"
        top = ",".join(  # a list, not a generator: join() builds one from a generator first anyway
            [
                f'{{"label":{_quote(label)},"index":{index},"score":{score!r}}}'
                for label, index, score in prediction.top_k
            ]
        )
        text = (
            f'{{"request_id":{_quote(self.request_id)},"source":{_quote(self.source)},"status":"ok",'
            f'"model":{_quote(self.model)},"model_version":{_quote(self.model_version)},'
            f'"latency_ms":{round(self.latency_ms, 3)!r},"timestamp":{round(self.timestamp, 3)!r},'
            f'"label":{_quote(prediction.label)},"class_index":{prediction.class_index},'
            f'"confidence":{prediction.confidence!r},"confident":{confident},'
            f'"top_k":[{top}]}}'
        )
        return text.encode("ascii")


class ResultMessage:
    """A result handed to the sinks; encoded to JSON once, by the first sink worker that needs it."""

    __slots__ = ("_encoded", "result")

    def __init__(self, result: InferenceResult) -> None:
        self.result = result
        self._encoded: bytes | None = None

    def payload(self) -> bytes:
        if self._encoded is None:
            self._encoded = self.result.to_json_bytes()
        return self._encoded


def error_result(request_id: str, source: str, reason: str, detail: str, **extra: Any) -> InferenceResult:
    return InferenceResult(request_id, source, "error", reason=reason, detail=detail, **extra)
