"""Two-stage option: results under EscalationThreshold go to a second model, else to a topic."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from edgeml_inference.config import AppConfig
from edgeml_inference.model import LoadedModel
from edgeml_inference.preprocess import Payload
from edgeml_inference.results import InferenceResult

_log = logging.getLogger(__name__)


class Escalator:
    """A batch hook: results under the threshold get a second model's answer in-line (result.escalation),
    or are forwarded; with escalation off, a batch costs one look at the configuration."""

    def __init__(
        self,
        config: Callable[[], AppConfig],
        forward: Callable[[str, bytes], None],
        second: Callable[[], LoadedModel | None] = lambda: None,
    ) -> None:
        self.config = config
        self.forward = forward
        self.second = second
        self.escalated = 0
        self.lock = threading.Lock()  # held while the second model runs; replacing it takes the lock

    def __call__(self, results: Sequence[InferenceResult], payloads: Sequence[Payload]) -> None:
        config = self.config()
        if config.escalation_threshold <= 0:
            return
        for result, payload in zip(results, payloads, strict=True):
            self.escalate(result, payload, config)

    def escalate(self, result: InferenceResult, payload: Payload, config: AppConfig) -> None:
        """One result: escalated when its confidence is under EscalationThreshold."""
        confidence = result.confidence
        if confidence is None or confidence >= config.escalation_threshold:
            return
        self.escalated += 1
        with self.lock:
            model = self.second()
            if model is not None:
                result.escalation = self._second_opinion(model, payload, config)
        if model is None and config.escalation_topic:
            self.forward(config.escalation_topic, result.to_json_bytes())

    @staticmethod
    def _second_opinion(model: LoadedModel, payload: Payload, config: AppConfig) -> dict[str, object]:
        from edgeml_inference.exceptions import BadInput, BadOutput

        meta = model.metadata
        try:
            tensor = model.preprocess(payload)
            (prediction,) = model.postprocess(model.backend.run(tensor[None]), config.top_k, 0.0)
        except BadInput as error:
            return {"model": meta.name, "status": "error", "reason": error.reason}
        except Exception as error:
            _log.warning("second-stage model failed: %s", error)
            return {"model": meta.name, "status": "error", "reason": "backend_error"}
        if isinstance(prediction, BadOutput):
            return {"model": meta.name, "status": "error", "reason": prediction.reason}
        return {
            "model": meta.name,
            "model_version": meta.version,
            "status": "ok",
            "label": prediction.label,
            "confidence": prediction.confidence,
        }
