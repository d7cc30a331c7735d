"""LiteRT backend: a user's .tflite model answering in the app, beside ONNX Runtime.

No model is downloaded: the .tflite files are written here from ONNX graphs by edgeml.model.zoo.tflite_export
(the flatbuffer schema bundled in ai-edge-litert): the real digits model, and a small MobileNet-style CNN
(strided convolution with asymmetric pads, depthwise, ReLU6, residual add, mean pool, Gemm) with uint8 NHWC
input normalised in the graph, as AWS's TensorFlow Lite components feed their models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from edgeml_inference.app import InferenceApp
from edgeml_inference.config import AppConfig
from edgeml_inference.exceptions import ModelLoadError
from edgeml_inference.metadata import METADATA_SCHEMA, sha256_file
from edgeml_inference.model import load_model
from inference_kit import DIGITS, bare_predictions, holdout, png, tensor_json
from onnx import TensorProto, helper, numpy_helper

from edgeml.model.zoo.tflite_export import PixelNormalisation, onnx_to_tflite


def tflite_model_dir(directory: Path, tflite: Path, metadata: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "model.tflite"
    target.write_bytes(tflite.read_bytes())
    metadata = {
        "schema": METADATA_SCHEMA,
        "version": "1.0.0",
        "framework": "tflite",
        "target": "cpu-tflite",
        "model_file": "model.tflite",
        "files": {"model.tflite": sha256_file(target)},
        **metadata,
    }
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


@pytest.fixture(scope="module")
def digits_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits-tflite")
    tflite = onnx_to_tflite(DIGITS / "model.onnx", root / "digits.tflite")
    card = json.loads((DIGITS / "model-card.json").read_text())
    return tflite_model_dir(
        root / "model",
        tflite,
        {
            "name": "digits",
            "input": {"name": "input", "shape": [1, 8, 8, 1], "dtype": "float32", "layout": "NHWC"},
            "output": {"name": "logits", "kind": "logits"},
            "preprocessing": {**card["preprocessing"], "layout": "NHWC"},
            "postprocessing": card["postprocessing"],
            "labels": card["labels"],
        },
    )


def test_a_tflite_model_answers_in_the_app_like_the_onnx_model(digits_tflite: Path) -> None:
    x, _ = holdout()
    app = InferenceApp(
        AppConfig(model_directory=str(digits_tflite), mode="microbatch", max_batch=16, model_poll_s=0)
    ).start()
    try:
        assert app.models.current.backend.name == "litert"
        tensors = [app.submit(np.ascontiguousarray(x[index].transpose(1, 2, 0))) for index in range(120)]
        images = [app.submit(png(x[index])) for index in range(120, 160)]
        answers = [future.result(10) for future in tensors + images]
    finally:
        app.stop()
    assert all(answer.ok for answer in answers), [answer.detail for answer in answers if not answer.ok][:3]
    got = [answer.prediction.class_index for answer in answers if answer.prediction is not None]
    assert got == bare_predictions(x[:160]).tolist()  # the ONNX model's own answers


def test_json_tensors_reach_the_tflite_model(digits_tflite: Path) -> None:
    x, _ = holdout()
    model = load_model(digits_tflite)
    sample = x[7].transpose(1, 2, 0)
    result = model.postprocess(model.backend.run(model.preprocess(tensor_json(sample))[None]), 3, 0.5)[0]
    assert getattr(result, "class_index", None) == int(bare_predictions(x[7:8])[0])


def mobilenet_block(path: Path) -> Path:
    """1x3x32x32 -> 5 classes: stride-2 conv with PyTorch's asymmetric pads, depthwise 3x3, ReLU6,
    pointwise, residual add, mean over H and W, Gemm."""
    rng = np.random.default_rng(3)

    def weight(name: str, *shape: int) -> Any:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    six = numpy_helper.from_array(np.asarray(6.0, np.float32), "six")
    zero = numpy_helper.from_array(np.asarray(0.0, np.float32), "zero")
    axes = numpy_helper.from_array(np.asarray([2, 3], np.int64), "axes")
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], strides=[2, 2], pads=[0, 0, 1, 1]),
        helper.make_node("Clip", ["c1", "zero", "six"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["d1"], group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["d1", "zero", "six"], ["r2"]),
        helper.make_node("Conv", ["r2", "wp"], ["p1"]),
        helper.make_node("Add", ["p1", "r1"], ["sum"]),
        helper.make_node("ReduceMean", ["sum", "axes"], ["pooled"], keepdims=1),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], transB=1),
    ]
    initializers = [
        weight("w1", 8, 3, 3, 3),
        weight("b1", 8),
        weight("wd", 8, 1, 3, 3),
        weight("bd", 8),
        weight("wp", 8, 8, 1, 1),
        weight("wf", 5, 8),
        weight("bf", 5),
        six,
        zero,
        axes,
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


NORMALISATION = PixelNormalisation(1.0 / 255.0, (0.5, 0.4, 0.3), (0.25, 0.25, 0.2))


def test_uint8_pixels_in_the_app_match_the_float_onnx_model(tmp_path: Path) -> None:
    source = mobilenet_block(tmp_path / "block.onnx")
    tflite = onnx_to_tflite(source, tmp_path / "block.tflite", NORMALISATION)
    model_dir = tflite_model_dir(
        tmp_path / "model",
        tflite,
        {
            "name": "block",
            "input": {"name": "input", "shape": [1, 32, 32, 3], "dtype": "uint8", "layout": "NHWC"},
            "output": {"name": "logits", "kind": "logits"},
            "preprocessing": {
                "color": "RGB",
                "resize": [32, 32],
                "scale": 1.0,
                "mean": [0, 0, 0],
                "std": [1, 1, 1],
                "layout": "NHWC",
            },
            "postprocessing": {"softmax": True, "top_k": 5},
            "labels": ["a", "b", "c", "d", "e"],
        },
    )
    model = load_model(model_dir)
    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    pixels = np.random.default_rng(4).integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    for sample in pixels:
        assert model.preprocess(sample).dtype == np.uint8
        got = model.backend.run(model.preprocess(sample)[None])
        normalised = sample.astype(np.float32) * NORMALISATION.scale - np.asarray(
            NORMALISATION.mean, np.float32
        )
        normalised /= np.asarray(NORMALISATION.std, np.float32)
        want = session.run(None, {"input": normalised.transpose(2, 0, 1)[None]})[0]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_without_litert_the_model_is_refused_with_the_reason(
    digits_tflite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # the import fails, as on armv7l
    with pytest.raises(ModelLoadError, match="ai-edge-litert is not installed"):
        load_model(digits_tflite)


def test_a_broken_tflite_file_is_a_load_error(tmp_path: Path, digits_tflite: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3 this is not a flatbuffer")
    metadata = json.loads((digits_tflite / "metadata.json").read_text())
    for key in ("files", "framework", "model_file", "schema", "version", "target"):
        metadata.pop(key)
    with pytest.raises(ModelLoadError, match=r"LiteRT cannot load model\.tflite"):
        load_model(tflite_model_dir(tmp_path / "model", broken, metadata))
