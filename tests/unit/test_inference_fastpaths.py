"""The hot path's shortcuts give the answers of the plain code they replaced.

- post-processing: fancy indexing with a cached row index (and a full sort for a few classes) instead of
  np.take_along_axis around a partition; checked against that reference implementation;
- pre-processing: no copy for an input already of the model's dtype and contiguous, the finiteness check
  on the tensor the model gets (NaN/inf still refused as non_finite_input, also when they appear only
  through the cast), no check for integer input;
- batching: a fixed batch-1 model runs each sample as a view instead of a stack sliced apart again;
- sinks: an idle sink worker sleeps until the next offer instead of waking on its flush timer.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from edgeml_inference.backends.base import Backend
from edgeml_inference.exceptions import BadInput, BadOutput
from edgeml_inference.metadata import ModelMetadata
from edgeml_inference.model import LoadedModel, load_model
from edgeml_inference.pipeline import run_batched, run_samples
from edgeml_inference.postprocess import Postprocessor, Prediction
from edgeml_inference.preprocess import Preprocessor
from edgeml_inference.sinks.base import AsyncSink, Sink
from inference_kit import bare_predictions, holdout, pipeline_of, write_model_dir


def reference_postprocess(
    labels: tuple[str, ...], apply_softmax: bool, outputs: np.ndarray, top_k: int, threshold: float
) -> list[Prediction | BadOutput]:
    """The post-processing as it was before the fast path (np.take_along_axis, partition for any k < n)."""
    scores = np.asarray(outputs, dtype=np.float32).reshape(outputs.shape[0], -1)
    finite = np.asarray(np.isfinite(scores).all(axis=1))
    if not finite.all():
        scores = np.where(finite[:, None], scores, 0.0)
    if apply_softmax:
        shifted = scores - np.max(scores, axis=-1, keepdims=True)
        exp = np.exp(shifted)
        probabilities = exp / np.sum(exp, axis=-1, keepdims=True)
    else:
        probabilities = scores
    k = max(1, min(top_k, scores.shape[1]))
    if k == 1:
        order = probabilities.argmax(axis=1)[:, None]
    elif k < probabilities.shape[1]:
        best = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
        ranked = np.argsort(-np.take_along_axis(probabilities, best, axis=1), axis=1, kind="stable")
        order = np.take_along_axis(best, ranked, axis=1)
    else:
        order = np.argsort(-probabilities, axis=1, kind="stable")
    top_scores = np.take_along_axis(probabilities, order, axis=1).tolist()
    results: list[Prediction | BadOutput] = []
    for row, indices in enumerate(order.tolist()):
        if not finite[row]:
            results.append(BadOutput("nan_output", "the model output holds NaN or infinity"))
            continue
        top = tuple(
            (labels[index] if index < len(labels) else str(index), index, score)
            for index, score in zip(indices, top_scores[row], strict=True)
        )
        results.append(Prediction(top[0][0], top[0][1], top[0][2], top, top[0][2] >= threshold))
    return results


def comparable(results: list[Prediction | BadOutput]) -> list[object]:
    return [(item.reason, item.detail) if isinstance(item, BadOutput) else item for item in results]


@pytest.mark.parametrize("classes", [2, 10, 64, 65, 1000])
@pytest.mark.parametrize("rows", [1, 7, 32, 300])
@pytest.mark.parametrize("top_k", [1, 3, 5, 2000])
@pytest.mark.parametrize("apply_softmax", [True, False])
def test_postprocessing_matches_the_reference(
    classes: int, rows: int, top_k: int, apply_softmax: bool
) -> None:
    rng = np.random.default_rng(classes * 1000 + rows + top_k)
    outputs = (rng.standard_normal((rows, classes)) * 4).astype(np.float32)
    if rows > 1:
        outputs[1, rng.integers(classes)] = np.nan
        outputs[-1, 0] = -np.inf
    labels = tuple(f"c{index}" for index in range(classes - 1))  # the last class has no label: its index
    post = Postprocessor(labels, apply_softmax)
    got = post(outputs, top_k, 0.3)
    assert comparable(got) == comparable(reference_postprocess(labels, apply_softmax, outputs, top_k, 0.3))
    assert len(got) == rows
    if rows > 1:
        assert isinstance(got[1], BadOutput) and got[1].reason == "nan_output"


def test_tied_scores_of_a_few_classes_come_in_index_order() -> None:
    post = Postprocessor(tuple("abcdef"), apply_softmax=False)
    (prediction,) = post(np.array([[0.1, 0.3, 0.3, 0.0, 0.3, 0.0]], dtype=np.float32), 3, 0.5)
    assert isinstance(prediction, Prediction)
    assert [index for _, index, _ in prediction.top_k] == [1, 2, 4]


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def pre(directory: Path) -> Preprocessor:
    return Preprocessor(ModelMetadata.load(directory))


def test_a_float32_contiguous_input_is_not_copied(pre: Preprocessor) -> None:
    x, _ = holdout()
    tensor = pre(x[3])
    assert tensor.base is x or np.shares_memory(tensor, x)
    assert np.array_equal(tensor, x[3])
    batched = pre(x[3:4])
    assert np.shares_memory(batched, x) and batched.shape == (1, 8, 8)


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.astype(np.float64),
        lambda x: x.astype(np.float16),
        lambda x: np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1),  # C-contiguous copy
        lambda x: np.asfortranarray(x),
        lambda x: (x * 255).astype(np.uint8),
        lambda x: (x * 16).astype(np.int64),
        lambda x: x > 0.5,
    ],
)
def test_other_dtypes_and_layouts_give_the_cast_contiguous_tensor(pre: Preprocessor, make: object) -> None:
    x, _ = holdout()
    array = make(x[5])  # type: ignore[operator]
    tensor = pre(array)
    assert tensor.dtype == np.float32 and tensor.flags["C_CONTIGUOUS"]
    assert np.array_equal(tensor, np.ascontiguousarray(array, dtype=np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_non_finite_input_is_still_refused(pre: Preprocessor, bad: float, dtype: type) -> None:
    x, _ = holdout()
    for array in (x[0].astype(dtype), x[0:1].astype(dtype), np.asfortranarray(x[0].astype(dtype))):
        array = array.copy()
        array.reshape(-1)[-1] = bad
        with pytest.raises(BadInput) as caught:
            pre(array)
        assert caught.value.reason == "non_finite_input"


def test_a_value_that_becomes_infinite_in_the_models_dtype_is_refused(pre: Preprocessor) -> None:
    x, _ = holdout()
    array = x[0].astype(np.float64)
    array[0, 0, 0] = 1e300  # finite in float64, inf as the float32 the model gets
    with pytest.raises(BadInput) as caught:
        pre(array)
    assert caught.value.reason == "non_finite_input"


class FixedBatch(Backend):
    """The digits session behind a fixed batch size, recording what each run got."""

    def __init__(self, inner: Backend, fixed: int) -> None:
        self.inner = inner
        self.fixed_batch = fixed
        self.seen: list[np.ndarray] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert batch.shape[0] == self.fixed_batch
        self.seen.append(batch)
        return self.inner.run(batch)


@pytest.fixture(scope="module")
def digits(directory: Path) -> LoadedModel:
    return load_model(directory)


@pytest.mark.parametrize("fixed", [None, 1, 4])
def test_run_samples_equals_a_stacked_run(digits: LoadedModel, fixed: int | None) -> None:
    x, _ = holdout()
    samples = [x[index] for index in range(11)]
    reference = digits.backend.run(np.stack(samples))
    backend = digits.backend if fixed is None else FixedBatch(digits.backend, fixed)
    model = LoadedModel(digits.directory, digits.metadata, backend, digits.preprocess, digits.postprocess)
    for count in (1, 2, 11):
        assert np.allclose(run_batched(model, np.stack(samples[:count])), reference[:count], atol=1e-6)
        if isinstance(backend, FixedBatch):
            backend.seen.clear()
        assert np.allclose(run_samples(model, samples[:count]), reference[:count], atol=1e-6)
        if isinstance(backend, FixedBatch) and fixed == 1:  # each sample went in as a view, nothing stacked
            assert len(backend.seen) == count and all(np.shares_memory(seen, x) for seen in backend.seen)


def test_a_batch_on_a_fixed_batch_model_answers_like_the_bare_session(digits: LoadedModel) -> None:
    x, _ = holdout()
    backend = FixedBatch(digits.backend, 1)
    model = LoadedModel(digits.directory, digits.metadata, backend, digits.preprocess, digits.postprocess)
    pipeline = pipeline_of(model)
    bad = x[2].copy()
    bad[0, 3, 3] = np.nan
    payloads = [x[0], x[1], bad, x[3]]
    results = pipeline.process_payloads(payloads)
    assert [result.status for result in results] == ["ok", "ok", "error", "ok"]
    assert results[2].reason == "non_finite_input"
    predicted = [result.prediction.class_index for result in results if result.prediction]
    assert predicted == bare_predictions(x[[0, 1, 3]]).tolist()
    assert len(backend.seen) == 3


class Recorder(Sink):
    name = "recorder"

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.payloads.append(payload)


def test_an_idle_sink_sleeps_and_wakes_for_the_next_offer() -> None:
    sink = Recorder()
    worker = AsyncSink(sink, max_queue=1024, flush_s=0.005)
    try:
        deadline = time.monotonic() + 5
        while not worker._sleeping and time.monotonic() < deadline:  # one empty drain: asleep
            time.sleep(0.005)
        assert worker._sleeping
        for burst in range(20):  # offers after idle spells, and bursts within one flush period
            if burst % 4 == 0:
                time.sleep(0.03)
            for index in range(burst):
                worker.offer(f"{burst}-{index}".encode())
        deadline = time.monotonic() + 5
        while len(sink.payloads) < sum(range(20)) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(sink.payloads) == sum(range(20))
        assert worker.flush(5) and worker.stats()["queued"] == 0
    finally:
        worker.close()


def test_offers_racing_the_worker_going_to_sleep_are_all_delivered() -> None:
    sink = Recorder()
    worker = AsyncSink(sink, max_queue=100_000, flush_s=0.001)
    total = 4 * 500

    def offer(thread: int) -> None:
        for index in range(500):
            worker.offer(f"{thread}-{index}".encode())
            if index % 7 == 0:
                time.sleep(0.0015)  # around the flush period: the worker keeps falling asleep

    threads = [threading.Thread(target=offer, args=(thread,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 10
    while len(sink.payloads) < total and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        assert sorted(sink.payloads) == sorted(f"{t}-{i}".encode() for t in range(4) for i in range(500))
    finally:
        worker.close()
