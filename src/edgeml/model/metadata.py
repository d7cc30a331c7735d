"""metadata.json of one model artifact, exactly as docs/model-metadata.md specifies it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from edgeml.model.card import ModelCard
from edgeml.model.targets import Platform
from edgeml.model.variants import SourceModel, Variant

METADATA_FILE = "metadata.json"
METADATA_SCHEMA = "edgeml.model-metadata/1"


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the device needs to load, check and monitor one model variant."""

    name: str
    version: str
    variant: Variant
    platform: Platform
    model_file: str
    source: SourceModel
    card: ModelCard
    files: dict[str, str]  # path inside the zip -> hex sha256, every file but metadata.json
    runtime_choice: dict[str, Any] | None = None  # ONNX Runtime vs LiteRT timings and pick (runtime_pick.py)

    def to_dict(self) -> dict[str, Any]:
        card, source, variant = self.card, self.source, self.variant
        # a .tflite model takes NHWC (TFLite's layout), whatever layout the source's card gives
        layout = "NHWC" if variant.framework == "tflite" else card.input_layout
        preprocessing = {**card.preprocessing, "layout": layout} if "layout" in card.preprocessing else None
        extra = {} if self.runtime_choice is None else {"runtime_choice": self.runtime_choice}
        return {
            "schema": METADATA_SCHEMA,
            "name": self.name,
            "version": self.version,
            "framework": variant.framework,
            "target": variant.target,
            "platform": {
                "os": self.platform.os,
                "architecture": self.platform.architecture,
                "accelerator": self.platform.accelerator,
            },
            "model_file": self.model_file,
            "source_sha256": source.sha256,
            "input": {
                "name": source.input_name,
                "shape": list(variant.input_shape or source.input_shape),
                "dtype": source.input_dtype,
                "layout": layout,
            },
            "output": {"name": source.output_name, "kind": card.output_kind},
            "preprocessing": card.preprocessing if preprocessing is None else preprocessing,
            "postprocessing": card.postprocessing,
            "labels": list(card.labels),
            "quantisation": variant.quantisation,
            "accuracy": {
                "top1": variant.accuracy_top1,
                "samples": variant.samples,
                "dataset": card.accuracy_dataset,
            },
            "dataset_id": card.dataset_id,
            "created": card.created,
            "baseline": card.baseline,
            "files": dict(sorted(self.files.items())),
            **extra,
        }

    def to_json_bytes(self) -> bytes:
        """Canonical bytes: sorted keys, indent=2, trailing newline (re-packaging gives identical bytes)."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")
