"""Pre-processing (Pillow decode, resize, normalise, layout; JSON tensors) and post-processing."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
import pytest
from edgeml_inference.exceptions import BadInput, BadOutput
from edgeml_inference.metadata import METADATA_SCHEMA, ModelMetadata
from edgeml_inference.postprocess import Postprocessor, Prediction, softmax
from edgeml_inference.preprocess import Preprocessor
from inference_kit import holdout, png, write_model_dir


@pytest.fixture(scope="module")
def pre(tmp_path_factory: pytest.TempPathFactory) -> Preprocessor:
    directory = write_model_dir(tmp_path_factory.mktemp("model"))
    return Preprocessor(ModelMetadata.load(directory))


def test_a_digit_png_becomes_the_training_tensor(pre: Preprocessor) -> None:
    x, _ = holdout()
    tensor = pre(png(x[0]))
    assert tensor.shape == (1, 8, 8) and tensor.dtype == np.float32
    assert np.allclose(tensor, x[0], atol=1 / 255)


def test_a_larger_colour_image_is_converted_and_resized(pre: Preprocessor) -> None:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (64, 48), (255, 255, 255)).save(buffer, format="JPEG")
    tensor = pre(buffer.getvalue())
    assert tensor.shape == (1, 8, 8)
    assert np.allclose(tensor, 1.0, atol=0.02)


def test_json_tensor_with_and_without_batch_axis(pre: Preprocessor) -> None:
    x, _ = holdout()
    plain = json.dumps({"shape": [1, 8, 8], "data": x[1].reshape(-1).tolist()}).encode()
    batched = json.dumps({"shape": [1, 1, 8, 8], "data": x[1].reshape(-1).tolist()}).encode()
    b64 = json.dumps(
        {"shape": [1, 8, 8], "dtype": "float32", "b64": base64.b64encode(x[1].tobytes()).decode()}
    )
    for payload in (plain, batched, b64.encode()):
        assert np.allclose(pre(payload), x[1])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty_input"),
        (b"\x89PNG\r\n\x1a\n" + os.urandom(64), "corrupt_image"),
        (b"not an image at all", "corrupt_image"),
        (b'{"shape": [1, 7, 8], "data": []}', "bad_tensor"),
        (json.dumps({"shape": [2, 8, 8], "data": [0.0] * 128}).encode(), "wrong_shape"),
        (json.dumps({"shape": [1, 8, 8], "data": ["x"] * 64}).encode(), "bad_tensor"),
        (json.dumps({"shape": [1, 8, 8], "data": [float("nan")] * 64}).encode(), "non_finite_input"),
        (b'{"shape": "big"}', "bad_tensor"),
        (b"{not json", "bad_tensor"),
        (json.dumps({"shape": [1, 8, 8], "dtype": "complex", "data": [0] * 64}).encode(), "bad_tensor"),
    ],
)
def test_bad_payloads_name_their_reason(pre: Preprocessor, payload: bytes, reason: str) -> None:
    with pytest.raises(BadInput) as raised:
        pre(payload)
    assert raised.value.reason == reason


def test_softmax_top_k_and_threshold() -> None:
    post = Postprocessor(tuple("abcd"), apply_softmax=True)
    logits = np.array([[0.0, 3.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=np.float32)
    first, second = post(logits, top_k=2, threshold=0.5)
    assert isinstance(first, Prediction) and isinstance(second, Prediction)
    assert [label for label, _, _ in first.top_k] == ["b", "c"]
    assert first.confidence == pytest.approx(float(softmax(logits[0])[1]))
    assert first.confident and not second.confident  # 0.25 < 0.5
    assert sum(score for _, _, score in second.top_k) == pytest.approx(0.5)


def test_probabilities_are_not_softmaxed_again() -> None:
    post = Postprocessor(("no", "yes"), apply_softmax=False)
    (prediction,) = post(np.array([[0.2, 0.8]], dtype=np.float32), top_k=5, threshold=0.9)
    assert isinstance(prediction, Prediction)
    assert prediction.label == "yes" and prediction.confidence == pytest.approx(0.8)
    assert len(prediction.top_k) == 2 and not prediction.confident


def test_nan_in_one_row_spoils_only_that_row() -> None:
    post = Postprocessor(("a", "b"), apply_softmax=True)
    good, bad = post(np.array([[1.0, 0.0], [np.nan, 0.0]], dtype=np.float32), top_k=1, threshold=0.0)
    assert isinstance(good, Prediction) and good.label == "a"
    assert isinstance(bad, BadOutput) and bad.reason == "nan_output"


def test_metadata_missing_a_key_is_a_clear_error(tmp_path: Path) -> None:
    from edgeml_inference.exceptions import MetadataInvalid

    (tmp_path / "metadata.json").write_text(json.dumps({"schema": METADATA_SCHEMA, "name": "x"}))
    with pytest.raises(MetadataInvalid, match="input"):
        ModelMetadata.load(tmp_path)


def test_top_k_of_a_thousand_classes_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 1000)).astype(np.float32)
    post = Postprocessor(tuple(f"c{i}" for i in range(1000)), apply_softmax=True)
    probabilities = softmax(logits)
    for row, prediction in enumerate(post(logits, top_k=5, threshold=0.0)):
        assert isinstance(prediction, Prediction)
        expected = np.argsort(-probabilities[row])[:5].tolist()
        assert [index for _, index, _ in prediction.top_k] == expected
        assert [score for _, _, score in prediction.top_k] == pytest.approx(
            probabilities[row][expected].tolist()
        )


def test_result_json_is_the_result_dict_for_ok_error_and_escalated_results() -> None:
    from edgeml_inference.results import InferenceResult, error_result

    prediction = Prediction('7 "seven" é', 7, 0.99, (('7 "seven" é', 7, 0.99), ("9", 9, 1e-07)), True)
    results = [
        InferenceResult("id-1", "file:ä.png", "ok", "digits", "1.0.0", prediction, latency_ms=0.12345),
        error_result("id-2", "http", "corrupt_image", 'bad "bytes"'),
        InferenceResult("id-3", "http", "ok", "digits", "1.0.0", prediction, escalation={"label": "1"}),
    ]
    for result in results:
        assert json.loads(result.to_json_bytes()) == json.loads(json.dumps(result.to_dict()))
