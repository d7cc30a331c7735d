"""Builders for the inference-app tests: the real digits model as a device sees it (model.onnx +
metadata.json per docs/model-metadata.md), digit images as PNG bytes, a NaN-producing model and a fake
IPC client at the SDK boundary."""

from __future__ import annotations

import io
import json
import shutil
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from edgeml_inference.config import AppConfig
from edgeml_inference.health import HealthMonitor
from edgeml_inference.metadata import METADATA_SCHEMA, sha256_file
from edgeml_inference.model import LoadedModel, ModelHolder
from edgeml_inference.pipeline import Pipeline
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "models" / "digits"


def digits_metadata(model_file: Path, version: str = "1.0.0", **overrides: Any) -> dict[str, Any]:
    card = json.loads((DIGITS / "model-card.json").read_text())
    metadata: dict[str, Any] = {
        "schema": METADATA_SCHEMA,
        "name": "digits",
        "version": version,
        "framework": "onnx",
        "target": "cpu-fp32",
        "platform": {"os": "linux", "architecture": "amd64", "accelerator": "cpu"},
        "model_file": model_file.name,
        "source_sha256": sha256_file(DIGITS / "model.onnx"),
        "input": {"name": "input", "shape": [1, 1, 8, 8], "dtype": "float32", "layout": card["input_layout"]},
        "output": {"name": "logits", "kind": card["output_kind"]},
        "preprocessing": card["preprocessing"],
        "postprocessing": card["postprocessing"],
        "labels": card["labels"],
        "quantisation": "none",
        "accuracy": {"top1": None, "samples": 0, "dataset": card["accuracy_dataset"]},
        "dataset_id": card["dataset_id"],
        "created": card["created"],
        "baseline": card["baseline"],
        "files": {model_file.name: sha256_file(model_file)},
    }
    metadata.update(overrides)
    return metadata


def write_model_dir(
    directory: Path, source: Path = DIGITS / "model.onnx", version: str = "1.0.0", **overrides: Any
) -> Path:
    """A model artifact folder as the model component unpacks it: model.onnx + metadata.json."""
    directory.mkdir(parents=True, exist_ok=True)
    model = directory / "model.onnx"
    shutil.copyfile(source, model)
    metadata = digits_metadata(model, version, **overrides)
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
    return directory


def nan_model(path: Path) -> Path:
    """Same input/output as digits; logits are NaN once any pixel is over 0.5 (log of a negative number),
    finite for the all-zero warm-up batch."""
    weight = numpy_helper.from_array(np.zeros((64, 10), dtype=np.float32), "weight")
    half = numpy_helper.from_array(np.array([0.5], dtype=np.float32), "half")
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weight"], ["zeros"]),
            helper.make_node("ReduceMax", ["flat"], ["peak"], axes=[1], keepdims=1),
            helper.make_node("Sub", ["half", "peak"], ["margin"]),
            helper.make_node("Log", ["margin"], ["log"]),
            helper.make_node("Add", ["zeros", "log"], ["logits"]),
        ],
        "nan",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[weight, half],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@cache
def holdout() -> tuple[np.ndarray, np.ndarray]:
    """The digits held-out set: x (N, 1, 8, 8) float32 in [0, 1], y (N,)."""
    from edgeml.model.datasets import digits_split

    _, _, held = digits_split()
    return held.x, held.y


def png(sample: np.ndarray, size: int = 8) -> bytes:
    """One (1, 8, 8) sample in [0, 1] as an 8-bit greyscale PNG (optionally upscaled)."""
    pixels = np.clip(np.rint(sample.reshape(8, 8) * 255.0), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L")
    if size != 8:
        image = image.resize((size, size), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pipeline_of(model: LoadedModel, config: AppConfig | None = None) -> Pipeline:
    """A pipeline answering with `model` under `config` (AppConfig() by default), with its health monitor."""
    settings = config or AppConfig()
    return Pipeline(
        ModelHolder(model), lambda: settings, HealthMonitor(model.metadata.baseline, model.metadata.labels)
    )


def tensor_json(sample: np.ndarray) -> bytes:
    return json.dumps({"shape": list(sample.shape), "data": sample.reshape(-1).tolist()}).encode()


def bare_predictions(x: np.ndarray) -> np.ndarray:
    """What a bare InferenceSession on models/digits/model.onnx predicts (the reference)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(DIGITS / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x.astype(np.float32)})[0]
    return np.asarray(np.argmax(logits, axis=1))


class FakeIpc:
    """Records what the app asks of Greengrass IPC; tests drive the subscriptions' callbacks."""

    def __init__(self, configuration: dict[str, Any] | None = None) -> None:
        self.configuration = dict(configuration or {})
        self.published: list[tuple[str, bytes]] = []
        self.iot_core: list[tuple[str, bytes, int]] = []
        self.states: list[str] = []
        self.reports: list[tuple[str, bool, str]] = []
        self.deferrals: list[tuple[str, int, str]] = []
        self.on_update: Callable[[], None] | None = None
        self.on_validate: Callable[[str, dict[str, Any]], None] | None = None
        self.on_pre: Callable[[str], None] | None = None
        self.on_post: Callable[[str], None] | None = None
        self.topic_handlers: dict[str, Callable[[bytes], None]] = {}
        self.lock = threading.Lock()

    def get_configuration(self) -> dict[str, Any]:
        return dict(self.configuration)

    def subscribe_to_configuration_update(self, on_update: Callable[[], None]) -> None:
        self.on_update = on_update

    def subscribe_to_validate_configuration_updates(
        self, on_validate: Callable[[str, dict[str, Any]], None]
    ) -> None:
        self.on_validate = on_validate

    def send_configuration_validity_report(self, deployment_id: str, accepted: bool, message: str) -> None:
        self.reports.append((deployment_id, accepted, message))

    def publish_to_topic(self, topic: str, payload: bytes) -> None:
        with self.lock:
            self.published.append((topic, payload))

    def publish_to_iot_core(self, topic: str, payload: bytes, qos: int) -> None:
        with self.lock:
            self.iot_core.append((topic, payload, qos))

    def subscribe_to_topic(self, topic: str, on_message: Callable[[bytes], None]) -> Callable[[], None]:
        self.topic_handlers[topic] = on_message
        return lambda: self.topic_handlers.pop(topic, None) and None

    def update_state(self, state: str) -> None:
        self.states.append(state)

    def subscribe_to_component_updates(
        self, on_pre_update: Callable[[str], None], on_post_update: Callable[[str], None]
    ) -> None:
        self.on_pre, self.on_post = on_pre_update, on_post_update

    def defer_component_update(self, deployment_id: str, recheck_after_ms: int, message: str) -> None:
        self.deferrals.append((deployment_id, recheck_after_ms, message))

    def close(self) -> None:
        pass

    def messages(self, topic: str) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(payload) for name, payload in self.published if name == topic]
