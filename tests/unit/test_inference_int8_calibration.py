"""INT8 for any model: `edgeml model compile -t cpu-int8 --calibration <folder>` on a non-digits model.

A small generated CNN (3 x 32 x 32 RGB in, three colour classes out) is calibrated from a folder of JPEG/PNG
images through the model card's preprocessing, checked against FP32 on the held-out split (agreement and,
with label sub-folders, accuracy), and refused (nothing written) past --max-int8-loss. The slow test does the
same for EfficientNet-Lite0 from an unlabelled folder of photos. The calibration pre-processing is the device
app's, tensor for tensor.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from edgeml_inference.metadata import METADATA_SCHEMA, ModelMetadata
from edgeml_inference.preprocess import Preprocessor
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from edgeml.model.compile.calibration import (
    CalibrationDataError,
    Int8LossTooHigh,
    Int8Report,
    check_int8_loss,
    load_calibration,
    preprocess_image,
)
from edgeml.model.evaluate import cpu_session, predict_logits

LABELS = ["red", "green", "blue"]
PREPROCESSING = {
    "color": "RGB",
    "resize": [32, 32],
    "resample": "bilinear",
    "scale": 1.0 / 255.0,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "layout": "NCHW",
}
MAIN = "from edgeml.cli import main; main()"
SHAPE = ("--input-shape", "1,3,32,32")


def colour_cnn(path: Path) -> Path:
    """Conv(3->6, 3x3) + ReLU + global average pool + Gemm(6->3): channel c's mean decides class c."""
    rng = np.random.default_rng(0)
    conv = rng.normal(0.0, 0.02, (6, 3, 3, 3)).astype(np.float32)
    for out in range(6):
        conv[out, out % 3] += 1.0 / 9.0 * (1 if out < 3 else -1)  # +c and -c detectors
    gemm = np.zeros((3, 6), dtype=np.float32)
    for cls in range(3):
        gemm[cls, cls], gemm[cls, cls + 3] = 4.0, -4.0
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"], axis=1),
            helper.make_node("Gemm", ["f", "k"], ["logits"], transB=1),
        ],
        "colour",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(conv, "w"), numpy_helper.from_array(gemm, "k")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def write_card(directory: Path) -> Path:
    card = {
        "labels": LABELS,
        "preprocessing": PREPROCESSING,
        "dataset_id": "generated-colours",
        "created": "2026-12-01",
        "input_layout": "NCHW",
        "output_kind": "logits",
    }
    path = directory / "model-card.json"
    path.write_text(json.dumps(card))
    return path


def colour_image(rng: np.random.Generator, dominant: int, size: tuple[int, int] = (96, 80)) -> Image.Image:
    pixels = rng.integers(40, 120, (size[1], size[0], 3))
    pixels[:, :, dominant] += rng.integers(60, 130)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def image_folder(root: Path, per_class: int = 14, labelled: bool = True) -> Path:
    rng = np.random.default_rng(1)
    for cls, label in enumerate(LABELS):
        folder = root / label if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            kind = "JPEG" if index % 2 else "PNG"
            colour_image(rng, cls).save(folder / f"{label}-{index}.{kind.lower()}", kind)
    return root


def edgeml(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


def test_int8_from_a_labelled_image_folder_reports_agreement_and_accuracy(tmp_path: Path) -> None:
    source = colour_cnn(tmp_path / "model.onnx")
    write_card(tmp_path)
    folder = image_folder(tmp_path / "photos")
    out = tmp_path / "variants"
    result = edgeml(
        "model", "compile", source, "--out", out, "-t", "cpu-int8", "--calibration", folder, *SHAPE
    )
    assert result.returncode == 0, result.stderr
    report = " ".join(result.stderr.split())
    assert "INT8 vs FP32 top-1 agreement" in report and "on 8 held-out samples" in report  # 20 % of 42
    assert "accuracy FP32 100.00%" in report
    variants = json.loads((out / "variants.json").read_text())
    (int8,) = variants["variants"]
    assert int8["target"] == "cpu-int8" and int8["quantisation"] == "int8-qdq"
    assert int8["samples"] == 8 and int8["accuracy_top1"] is not None and int8["accuracy_top1"] >= 0.875
    quantised = onnx.load(str(out / "cpu-int8.onnx"))
    assert any(node.op_type == "QuantizeLinear" for node in quantised.graph.node)
    data = load_calibration(folder, PREPROCESSING, (1, 3, 32, 32), LABELS)  # the same seeded split
    fp32 = predict_logits(cpu_session(source), data.holdout).argmax(axis=1)
    int8_top1 = predict_logits(cpu_session(out / "cpu-int8.onnx"), data.holdout).argmax(axis=1)
    assert data.holdout_labels is not None and (fp32 == data.holdout_labels).all()
    assert f"{np.mean(fp32 == int8_top1):.2%}" in report


@pytest.mark.slow  # two compiles
def test_int8_past_the_allowed_loss_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    source = colour_cnn(tmp_path / "model.onnx")
    write_card(tmp_path)
    # Most tensors tiny (their class decided by 0.01 offsets), a quarter huge: min/max calibration spans the
    # huge ones, so INT8's step (~0.8) rounds the tiny ones to zero and their top-1 no longer follows FP32's.
    rng = np.random.default_rng(5)
    tiny = rng.normal(0.0, 0.001, (30, 3, 32, 32)) + 0.01 * np.eye(3)[np.arange(30) % 3][:, :, None, None]
    huge = rng.normal(0.0, 50.0, (10, 3, 32, 32))
    folder = tmp_path / "tensors.npy"
    np.save(folder, np.concatenate([tiny, huge]).astype(np.float32))
    out = tmp_path / "variants"
    args = ("model", "compile", source, "--out", out, "-t", "cpu-int8", "--calibration", folder, *SHAPE)
    refused = edgeml(*args, "--max-int8-loss", "0.1", "--holdout-fraction", "0.5")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: cpu-int8 refused: INT8 vs FP32 top-1 agreement")
    assert not out.exists()
    warned = edgeml(*args, "--max-int8-loss", "0.1", "--holdout-fraction", "0.5", "--int8-loss", "warn")
    assert warned.returncode == 0, warned.stderr
    assert "warning: cpu-int8 kept although over the limit" in " ".join(warned.stderr.split())
    assert (out / "cpu-int8.onnx").is_file()


def test_the_loss_rule() -> None:
    within = Int8Report(samples=50, agreement=0.98, fp32_accuracy=None, int8_accuracy=None, max_loss=0.02)
    over = Int8Report(samples=50, agreement=0.96, fp32_accuracy=0.9, int8_accuracy=0.86, max_loss=0.02)
    check_int8_loss(within, "refuse")
    check_int8_loss(over, "warn")
    with pytest.raises(
        Int8LossTooHigh, match=r"agreement 96\.00% on 50 held-out samples; accuracy FP32 90\.00%"
    ):
        check_int8_loss(over, "refuse")


def test_bad_calibration_data_is_named(tmp_path: Path) -> None:
    with pytest.raises(CalibrationDataError, match="no image files"):
        (tmp_path / "empty").mkdir()
        load_calibration(tmp_path / "empty", PREPROCESSING, (1, 3, 32, 32), LABELS)
    (tmp_path / "labels" / "purple").mkdir(parents=True)
    with pytest.raises(CalibrationDataError, match="purple name no label"):
        load_calibration(tmp_path / "labels", PREPROCESSING, (1, 3, 32, 32), LABELS)
    np.save(tmp_path / "wrong.npy", np.zeros((4, 3, 16, 16), np.float32))
    with pytest.raises(
        CalibrationDataError, match=r"shape \[3, 16, 16\], the model input needs \[3, 32, 32\]"
    ):
        load_calibration(tmp_path / "wrong.npy", None, (1, 3, 32, 32), LABELS)
    tensors = np.random.default_rng(0).normal(size=(10, 3, 32, 32)).astype(np.float32)
    np.savez(tmp_path / "set.npz", x=tensors, y=np.arange(10) % 3)
    split = load_calibration(tmp_path / "set.npz", None, (1, 3, 32, 32), LABELS, holdout_fraction=0.3)
    assert split.calibration.shape == (7, 3, 32, 32) and split.holdout.shape == (3, 3, 32, 32)
    assert split.holdout_labels is not None and split.holdout_labels.shape == (3,)


@pytest.mark.parametrize("kind", ["JPEG", "PNG"])
def test_calibration_preprocessing_is_the_device_apps(kind: str) -> None:
    from sklearn.datasets import load_sample_images

    photo = Image.fromarray(load_sample_images().images[1]).resize((640, 480))
    buffer = io.BytesIO()
    photo.save(buffer, kind)
    spec = {
        **PREPROCESSING,
        "resize": [224, 224],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }
    metadata = ModelMetadata.from_dict(
        {
            "schema": METADATA_SCHEMA,
            "name": "m",
            "version": "1.0.0",
            "framework": "onnx",
            "model_file": "model.onnx",
            "input": {"name": "input", "shape": [1, 3, 224, 224], "dtype": "float32"},
            "output": {"name": "logits", "kind": "logits"},
            "preprocessing": spec,
            "labels": LABELS,
            "files": {},
        }
    )
    device = Preprocessor(metadata)(buffer.getvalue())
    assert np.array_equal(preprocess_image(buffer.getvalue(), spec), device)


@pytest.mark.slow
def test_efficientnet_lite0_int8_from_a_folder_of_photos(tmp_path: Path) -> None:
    from edgeml.model.zoo.efficientnet import cached_efficientnet_lite0
    from edgeml.model.zoo.images import calibration_images

    repo = Path(__file__).resolve().parents[2]
    source = cached_efficientnet_lite0(repo / "build" / "models")
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, image in enumerate(calibration_images(40, seed=3)):
        image.resize((640, 480)).save(folder / f"{index}.jpg", quality=90)
    out = tmp_path / "variants"
    result = edgeml(
        "model",
        "compile",
        source,
        "--out",
        out,
        "-t",
        "cpu-int8",
        "--calibration",
        folder,
        "--max-int8-loss",
        "0.25",
        "--int8-loss",
        "warn",
    )
    assert result.returncode == 0, result.stderr
    assert "INT8 vs FP32 top-1 agreement" in result.stderr and "on 8 held-out samples" in result.stderr
    assert (out / "cpu-int8.onnx").stat().st_size < source.stat().st_size / 2
