"""Results handled per batch, not per sample: one sink offer per batch (counted in results against the
sink's budget), one JSON pass per batch equal to the per-result encoding, one finiteness pass per stacked
batch (a bad sample refused, its neighbours answered), and every result of a batch still reaches every
sink."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from edgeml_inference.app import InferenceApp
from edgeml_inference.config import AppConfig
from edgeml_inference.health import HealthMonitor
from edgeml_inference.model import ModelHolder, load_model
from edgeml_inference.pipeline import Pipeline, Request
from edgeml_inference.postprocess import Prediction
from edgeml_inference.results import InferenceResult, ResultBatch, encode_results, error_result
from edgeml_inference.sinks.base import AsyncSink, Sink
from inference_kit import FakeIpc, bare_predictions, holdout, png, write_model_dir


def test_batch_encoding_equals_the_json_of_each_result() -> None:
    top = (("seven", 7, 0.875), ('"quoted" \u00e9', 2, 0.125), ("7", 1, 1e-9))
    results = [
        InferenceResult("id-1", "http", "ok", "digits", "1.0.0", Prediction("seven", 7, 0.875, top, True)),
        InferenceResult("id-2", "file:a b.png", "ok", "digits", "1.0.0", Prediction(*top[1], top, False)),
        error_result("id-3", "topic:x", "corrupt_image", "cannot decode", model="digits"),
        InferenceResult("id-4", "http", "ok", "digits", "1.0.0", Prediction("seven", 7, 0.875, top, True)),
    ]
    results[3].escalation = {"model": "big", "status": "ok"}
    for index, result in enumerate(results):
        result.latency_ms, result.timestamp = 0.1234 * index, 1795383622.91234
    encoded = encode_results(results)
    assert [json.loads(item) for item in encoded] == [result.to_dict() for result in results]
    assert all(item.isascii() for item in encoded)
    assert ResultBatch(results).payloads() == encoded


class Recording(Sink):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.release.wait(10)
        self.received.append(payload)


def _batch(start: int, count: int) -> ResultBatch:
    return ResultBatch([error_result(f"r{start + index}", "t", "x", "y") for index in range(count)])


def test_a_batch_counts_its_results_against_the_sink_budget() -> None:
    recording = Recording()
    sink = AsyncSink(recording, max_queue=10)
    first = sink.offer(_batch(0, 4))  # the worker may take this one at once and wait in send
    kept = [sink.offer(_batch(start, 4)) for start in (4, 8, 12, 16)]
    assert first and not all(kept)
    assert sink.stats()["queued"] <= 10
    recording.release.set()
    sink.close()
    ids = [json.loads(payload)["request_id"] for payload in recording.received]
    assert ids[-4:] == ["r16", "r17", "r18", "r19"]  # the newest batch survives whole
    assert len(ids) + sink.dropped == 20 and sink.sent == len(ids)  # drops counted in results


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("digits"))


def test_a_non_finite_sample_is_refused_and_its_batch_neighbours_answered(model_dir: Path) -> None:
    x, _ = holdout()
    model = load_model(model_dir)
    config = AppConfig()
    pipeline = Pipeline(ModelHolder(model), lambda: config, HealthMonitor(model.metadata.baseline, ()))
    batch: list[np.ndarray] = [np.ascontiguousarray(x[index], dtype=np.float32) for index in range(8)]
    batch[3] = batch[3].copy()
    batch[3][0, 2, 2] = np.nan
    batch[5] = batch[5].astype(np.float64) * 1e300  # finite in float64, infinite in the model's float32
    results = pipeline.process([Request(sample, "test") for sample in batch])
    assert [result.reason for result in results] == [
        "",
        "",
        "",
        "non_finite_input",
        "",
        "non_finite_input",
        "",
        "",
    ]
    expected = bare_predictions(x[:8])
    for index in (0, 1, 2, 4, 6, 7):
        prediction = results[index].prediction
        assert prediction is not None and prediction.class_index == int(expected[index])


def test_every_result_of_a_microbatch_reaches_both_ipc_sinks_once(model_dir: Path) -> None:
    x, _ = holdout()
    ipc = FakeIpc()
    config = AppConfig(
        model_directory=str(model_dir),
        mode="microbatch",
        max_batch=32,
        max_wait_ms=50,
        iot_core_topic="edgeml/{iot:thingName}/results",
        health_interval_s=3600,
        model_poll_s=0,
    )
    app = InferenceApp(config, ipc).start()
    try:
        futures = [app.submit(np.ascontiguousarray(x[index], dtype=np.float32)) for index in range(64)]
        answered = [future.result(10) for future in futures]
        for sink in app.result_sinks:
            assert sink.flush(5)
    finally:
        app.stop()  # also sends what the IoT Core sink still holds for its next batch
    assert app.pipeline.batches < 64  # they were batched
    published = ipc.messages(config.results_topic)
    ids = sorted(result.request_id for result in answered)
    assert sorted(message["request_id"] for message in published) == ids
    to_iot_core = [json.loads(payload) for _, payload, _ in ipc.iot_core]  # IoT Core gets batched messages
    batched = [result for message in to_iot_core for result in message.get("results", [message])]
    assert sorted(result["request_id"] for result in batched) == ids
    by_id = {message["request_id"]: message for message in published}
    assert all(by_id[result.request_id] == result.to_dict() for result in answered)


def test_inputs_decoded_on_the_source_thread_are_decoded_again_after_a_swap(
    model_dir: Path, tmp_path: Path
) -> None:
    x, _ = holdout()
    first = load_model(model_dir)
    holder = ModelHolder(first)
    config = AppConfig()
    pipeline = Pipeline(holder, lambda: config, HealthMonitor(first.metadata.baseline, ()))
    early, broken = Request(png(x[0]), "test"), Request(b"\x89PNG broken", "test")
    pipeline.prepare(early)
    pipeline.prepare(broken)
    assert early.prepared_by is first and isinstance(early.prepared, np.ndarray)
    assert pipeline.process([broken])[0].reason == "corrupt_image"
    # the next model reads RGB images: the digits model's 1-channel input no longer fits what it decodes
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["preprocessing"] = {
        **metadata["preprocessing"],
        "color": "RGB",
        "mean": [0, 0, 0],
        "std": [1, 1, 1],
    }
    second_dir = write_model_dir(tmp_path / "rgb")
    (second_dir / "metadata.json").write_text(json.dumps(metadata))
    holder.swap(load_model(second_dir))
    (answer,) = pipeline.process([early])
    assert answer.reason == "wrong_shape"  # decoded again, by the model now in service


def test_encoded_scores_are_the_models_float32_values_and_equal_to_dict() -> None:
    from edgeml_inference.postprocess import Postprocessor

    logits = np.random.default_rng(5).normal(size=(16, 10)).astype(np.float32)
    predictions = Postprocessor(tuple("abcdefghij"), True)(logits, 3, 0.5)
    results = [
        InferenceResult(f"id-{index}", "http", "ok", "m", "1", prediction, latency_ms=0.5 + index / 7)
        for index, prediction in enumerate(predictions)
    ]
    decoded = [json.loads(item) for item in encode_results(results)]
    assert decoded == [result.to_dict() for result in results]
    for body, prediction in zip(decoded, predictions, strict=True):
        assert isinstance(prediction, Prediction)
        assert np.float32(body["confidence"]) == np.float32(prediction.confidence)  # the same float32
        assert [np.float32(entry["score"]) for entry in body["top_k"]] == [
            np.float32(score) for _, _, score in prediction.top_k
        ]
