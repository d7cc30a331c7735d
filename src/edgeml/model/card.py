"""The model card: what the packager needs to know about a source model beyond its graph.

It lives beside the source model as `model-card.json` (or is passed with --card) and supplies the
metadata.json fields a compiler cannot infer: labels, preprocessing, dataset, training date, baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeml.errors import EdgemlError

CARD_FILE = "model-card.json"


class BadModelCard(EdgemlError):
    """The model card is missing, not JSON, or lacks a required key."""


@dataclass(frozen=True)
class ModelCard:
    """Facts about the source model that every variant shares."""

    labels: tuple[str, ...]
    preprocessing: dict[str, Any]
    dataset_id: str
    created: str
    accuracy_dataset: str
    input_layout: str = "NCHW"
    output_kind: str = "logits"
    postprocessing: dict[str, Any] = field(default_factory=lambda: {"softmax": True, "top_k": 3})
    baseline: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "preprocessing": self.preprocessing,
            "dataset_id": self.dataset_id,
            "created": self.created,
            "accuracy_dataset": self.accuracy_dataset,
            "input_layout": self.input_layout,
            "output_kind": self.output_kind,
            "postprocessing": self.postprocessing,
            "baseline": self.baseline,
        }


_REQUIRED = ("labels", "preprocessing", "dataset_id", "created")


def load_card(path: Path) -> ModelCard:
    """Reads a model card; raises BadModelCard naming the file and what is wrong with it."""
    if not path.is_file():
        raise BadModelCard(f"{path}: no model card (put {CARD_FILE} beside the source model or pass --card)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadModelCard(f"{path}: not JSON ({error})") from error
    if not isinstance(raw, dict):
        raise BadModelCard(f"{path}: expected a JSON object")
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise BadModelCard(f"{path}: missing {', '.join(missing)}")
    labels = raw["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise BadModelCard(f"{path}: labels must be a non-empty list of strings")
    if not isinstance(raw["preprocessing"], dict):
        raise BadModelCard(f"{path}: preprocessing must be an object")
    defaults = ModelCard((), {}, "", "", "")
    return ModelCard(
        labels=tuple(labels),
        preprocessing=raw["preprocessing"],
        dataset_id=str(raw["dataset_id"]),
        created=str(raw["created"]),
        accuracy_dataset=str(raw.get("accuracy_dataset", raw["dataset_id"])),
        input_layout=str(raw.get("input_layout", defaults.input_layout)),
        output_kind=str(raw.get("output_kind", defaults.output_kind)),
        postprocessing=dict(raw.get("postprocessing", defaults.postprocessing)),
        baseline=raw.get("baseline"),
    )
