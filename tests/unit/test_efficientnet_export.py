"""EfficientNet-Lite0 export: a valid ONNX of the documented signature that predicts what torch predicts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeml.model.card import load_card
from edgeml.model.evaluate import cpu_session
from edgeml.model.signature import read_signature
from edgeml.model.zoo import efficientnet
from edgeml.model.zoo.efficientnet import (
    ExportedModel,
    export_efficientnet_lite0,
    export_with_details,
    imagenet_preprocess,
    sample_images,
)

# ImageNet classes a person would accept for scikit-learn's two sample photos (a Chinese temple; a daisy).
TEMPLE_CLASSES = {"palace", "bell tower", "monastery", "pagoda", "castle", "church", "mosque", "lakeshore"}
FLOWER_CLASSES = {"daisy"}


def test_sample_images_are_local_rgb_crops() -> None:
    images = sample_images()
    assert len(images) == 12
    assert all(image.mode == "RGB" and image.size[0] == image.size[1] for image in images)


def test_imagenet_preprocess_gives_a_normalised_nchw_batch_of_one() -> None:
    tensor = imagenet_preprocess(sample_images()[0])
    assert tensor.shape == (1, 3, 224, 224) and tensor.dtype == np.float32
    assert -1.0 <= float(tensor.min()) < 0.0 < float(tensor.max()) <= 1.0  # (pixel - 127) / 128


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> ExportedModel:
    return export_with_details(tmp_path_factory.mktemp("zoo") / "efficientnet-lite0" / "model.onnx")


@pytest.mark.slow
def test_export_has_the_documented_signature_labels_and_card(exported: ExportedModel) -> None:
    assert exported.pretrained
    signature = read_signature(exported.path)
    assert signature.input.name == "input" and signature.input.shape == (1, 3, 224, 224)
    assert [(out.name, out.shape) for out in signature.outputs] == [("logits", (1, 1000))]
    assert signature.opset >= 17
    labels = json.loads(exported.labels.read_text())
    assert len(labels) == 1000 and labels[1] == "goldfish"
    card = load_card(exported.card)
    assert list(card.labels) == labels
    assert card.preprocessing["resize"] == [224, 224] and card.preprocessing["color"] == "RGB"
    assert sorted(path.name for path in exported.path.parent.iterdir()) == [
        "labels.json",
        "model-card.json",
        "model.onnx",
    ]


@pytest.mark.slow
def test_onnx_predictions_match_torch_and_are_plausible(exported: ExportedModel) -> None:
    import torch

    module = efficientnet.load_efficientnet_lite0().module
    session = cpu_session(exported.path)
    labels = json.loads(exported.labels.read_text())
    images = sample_images()
    predicted = []
    for image in images:
        tensor = imagenet_preprocess(image)
        onnx_logits = session.run(None, {"input": tensor})[0]
        with torch.no_grad():
            torch_logits = module(torch.from_numpy(tensor)).numpy()
        np.testing.assert_allclose(onnx_logits, torch_logits, rtol=1e-3, atol=1e-3)
        predicted.append(labels[int(onnx_logits.argmax())])
    temple, flower = predicted[:6], predicted[6:]
    assert sum(name in TEMPLE_CLASSES for name in temple) >= 5, temple
    assert sum(name in FLOWER_CLASSES for name in flower) >= 5, flower


@pytest.mark.slow
def test_without_the_weight_packages_a_random_mobilenet_takes_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import now raises ImportError
    path = export_efficientnet_lite0(tmp_path / "model.onnx")
    signature = read_signature(path)
    assert signature.input.shape == (1, 3, 224, 224) and signature.outputs[0].shape == (1, 1000)
    card = json.loads((tmp_path / "model-card.json").read_text())
    assert card["weights"] == "mobilenetv2-random-weights"
    logits = cpu_session(path).run(None, {"input": imagenet_preprocess(sample_images()[0])})[0]
    assert logits.shape == (1, 1000)
