"""The pipeline and its batching queue with the real digits model; bad input never takes it down."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from edgeml_inference.config import AppConfig
from edgeml_inference.model import LoadedModel, load_model
from edgeml_inference.pipeline import Batcher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inference_kit import bare_predictions, holdout, nan_model, pipeline_of, png, tensor_json, write_model_dir


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_model(write_model_dir(tmp_path_factory.mktemp("digits")))


def test_png_inputs_reach_the_models_accuracy(digits: LoadedModel) -> None:
    x, y = holdout()
    pipeline = pipeline_of(digits)
    results = pipeline.process_payloads([png(sample) for sample in x])
    predicted = np.array([result.prediction.class_index if result.prediction else -1 for result in results])
    assert np.array_equal(predicted, bare_predictions(x))
    assert np.mean(predicted == y) >= 0.97
    first = results[0].to_dict()
    assert first["status"] == "ok" and first["label"] == str(predicted[0]) and len(first["top_k"]) == 3


def test_microbatching_groups_concurrent_requests_into_one_batch(digits: LoadedModel) -> None:
    x, _ = holdout()
    pipeline = pipeline_of(digits)
    batcher = Batcher(pipeline, lambda: (32, 0.2)).start()
    try:
        futures = [batcher.submit(tensor_json(sample), "test") for sample in x[:32]]
        results = [future.result(10) for future in futures]
    finally:
        batcher.stop()
    assert [r.prediction.class_index for r in results if r.prediction] == list(bare_predictions(x[:32]))
    assert pipeline.batches <= 3  # 32 requests answered in a few batches, not 32


def test_continuous_mode_runs_one_request_per_batch(digits: LoadedModel) -> None:
    x, _ = holdout()
    pipeline = pipeline_of(digits, AppConfig(mode="continuous"))
    batcher = Batcher(pipeline, lambda: (1, 0.0)).start()
    try:
        results = [batcher.submit(png(sample), "test").result(10) for sample in x[:5]]
    finally:
        batcher.stop()
    assert all(result.ok for result in results)
    assert pipeline.batches == 5


def test_a_bad_request_in_a_batch_does_not_spoil_the_others(digits: LoadedModel) -> None:
    x, _ = holdout()
    pipeline = pipeline_of(digits)
    payloads = [png(x[0]), b"\xff\xd8\xffjunk", tensor_json(x[1]), b'{"shape": [3], "data": [1, 2, 3]}']
    results = pipeline.process_payloads(payloads)
    assert [result.status for result in results] == ["ok", "error", "ok", "error"]
    assert [result.reason for result in results] == ["", "corrupt_image", "", "wrong_shape"]
    assert pipeline.health.total_errors == 2
    assert pipeline.health.errors_by_reason == {"corrupt_image": 1, "wrong_shape": 1}


def test_a_200_mb_payload_is_refused_by_size(digits: LoadedModel) -> None:
    pipeline = pipeline_of(digits)
    result = pipeline.infer(bytes(200 * 1024 * 1024))
    assert result.reason == "payload_too_large"
    assert "MaxPayloadBytes" in result.detail


def test_nan_outputs_become_error_results(tmp_path: Path) -> None:
    model = load_model(write_model_dir(tmp_path / "nan", source=nan_model(tmp_path / "src" / "nan.onnx")))
    pipeline = pipeline_of(model)
    x, _ = holdout()
    result = pipeline.infer(png(x[0]))
    assert (result.status, result.reason) == ("error", "nan_output")
    assert pipeline.health.errors_by_reason["nan_output"] == 1


def test_a_backend_failure_answers_every_request_and_the_next_batch_works(digits: LoadedModel) -> None:
    pipeline = pipeline_of(digits)
    x, _ = holdout()
    original = digits.backend.run
    calls = {"n": 0}

    def flaky(batch: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("device lost")
        return original(batch)

    digits.backend.run = flaky  # type: ignore[method-assign]
    try:
        failed = pipeline.process_payloads([png(x[0]), png(x[1])])
        recovered = pipeline.infer(png(x[2]))
    finally:
        digits.backend.run = original  # type: ignore[method-assign]
    assert [result.reason for result in failed] == ["backend_error", "backend_error"]
    assert recovered.ok


def test_an_empty_queue_stop_and_a_closed_batcher_still_answer(digits: LoadedModel) -> None:
    batcher = Batcher(pipeline_of(digits), lambda: (8, 0.01)).start()
    batcher.stop()
    result = batcher.submit(b"x", "late").result(1)
    assert result.reason == "shutting_down"


bad_inputs = st.one_of(
    st.binary(max_size=512),
    st.binary(max_size=64).map(lambda tail: b"\x89PNG\r\n\x1a\n" + tail),
    st.binary(max_size=64).map(lambda tail: b"\xff\xd8\xff\xe0" + tail),
    st.binary(max_size=64).map(lambda tail: b"GIF89a" + tail),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
        ),
        max_leaves=12,
    ).map(lambda document: json.dumps(document).encode()),
    st.builds(
        lambda shape, data: json.dumps({"shape": shape, "data": data}).encode(),
        st.lists(st.integers(min_value=-2, max_value=9), max_size=5),
        st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=80),
    ),
)


def test_one_thousand_generated_bad_inputs_all_get_an_answer(digits: LoadedModel) -> None:
    pipeline = pipeline_of(digits)
    answered = []

    @settings(max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(bad_inputs)
    def send(payload: bytes) -> None:
        result = pipeline.infer(payload)
        assert result.status in ("ok", "error")
        assert result.status == "ok" or result.reason
        answered.append(result)

    send()
    assert len(answered) >= 1000
    assert pipeline.health.total_requests == len(answered)
    assert pipeline.infer(png(holdout()[0][0])).ok  # still serving


@pytest.mark.parametrize("limits", [(16, 0.002), (1, 0.0)], ids=["microbatch", "continuous"])
def test_concurrent_submitters_all_get_their_own_answer(
    digits: LoadedModel, limits: tuple[int, float]
) -> None:
    x, _ = holdout()
    pipeline = pipeline_of(digits)
    batcher = Batcher(pipeline, lambda: limits).start()
    expected = bare_predictions(x[:80])
    got: dict[int, int] = {}

    def client(offset: int) -> None:
        for index in range(offset, 80, 4):
            result = batcher.submit(png(x[index]), f"client{offset}").result(10)
            assert result.prediction is not None
            got[index] = result.prediction.class_index

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    batcher.stop()
    assert [got[index] for index in range(80)] == list(expected)


def test_a_group_is_batched_together_and_split_at_max_batch(digits: LoadedModel) -> None:
    x, _ = holdout()
    pipeline = pipeline_of(digits)
    batcher = Batcher(pipeline, lambda: (4, 0.0)).start()
    try:
        futures = batcher.submit_group(
            [(png(sample), f"file:{index}") for index, sample in enumerate(x[:10])]
        )
        results = [future.result(10) for future in futures]
    finally:
        batcher.stop()
    assert [result.source for result in results] == [f"file:{index}" for index in range(10)]
    assert [r.prediction.class_index for r in results if r.prediction] == list(bare_predictions(x[:10]))
    assert pipeline.batches == 3  # 4 + 4 + 2: one group, never more than MaxBatch per run
