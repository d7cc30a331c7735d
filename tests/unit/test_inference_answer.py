"""Answer, the app's future of one request, and the batching queue's bounds and filling."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
from edgeml_inference.answer import Answer
from edgeml_inference.config import AppConfig
from edgeml_inference.model import LoadedModel, load_model
from edgeml_inference.pipeline import Batcher
from edgeml_inference.results import error_result
from inference_kit import bare_predictions, holdout, pipeline_of, write_model_dir


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return load_model(write_model_dir(tmp_path_factory.mktemp("digits")))


def test_waiting_past_the_timeout_raises_the_builtin_timeout_error() -> None:
    # sources catch the builtin TimeoutError; before Python 3.11 a Future raised a different class
    with pytest.raises(TimeoutError):
        Answer().result(0.01)


def test_the_first_answer_wins_and_every_waiter_gets_it() -> None:
    answer = Answer()
    got: list[str] = []
    waiters = [threading.Thread(target=lambda: got.append(answer.result(10).reason)) for _ in range(4)]
    for waiter in waiters:
        waiter.start()
    assert not answer.done()
    assert answer.set_result(error_result("r", "s", "first", ""))
    assert not answer.set_result(error_result("r", "s", "second", ""))
    for waiter in waiters:
        waiter.join(10)
    assert answer.done() and got == ["first"] * 4
    assert answer.result().reason == "first"


def test_callbacks_run_once_added_before_or_after_the_answer(caplog: pytest.LogCaptureFixture) -> None:
    answer = Answer()
    calls: list[str] = []

    def broken(_: Answer) -> None:
        raise RuntimeError("a broken callback")

    answer.add_done_callback(lambda done: calls.append("before:" + done.result().reason))
    answer.add_done_callback(broken)
    with caplog.at_level(logging.ERROR):
        answer.set_result(error_result("r", "s", "answered", ""))
    answer.add_done_callback(lambda done: calls.append("after:" + done.result().reason))
    answer.set_result(error_result("r", "s", "again", ""))
    assert calls == ["before:answered", "after:answered"]
    assert "answer callback failed" in caplog.text  # logged, not raised into the resolver


def test_a_full_queue_refuses_with_overloaded_and_counts_it(digits: LoadedModel) -> None:
    x, _ = holdout()
    pipeline = pipeline_of(digits)
    batcher = Batcher(pipeline, lambda: (8, 0.01), max_queue=2)  # worker not started: nothing drains
    answers = [batcher.submit(x[index], "test") for index in range(3)]
    refused = answers[2].result(1)
    assert (refused.status, refused.reason) == ("error", "overloaded")
    assert batcher.rejected == 1 and pipeline.health.errors_by_reason == {"overloaded": 1}
    batcher.start()
    assert [answer.result(10).ok for answer in answers[:2]] == [True, True]  # what was accepted is kept
    batcher.stop()


def test_a_batch_that_does_not_fill_runs_when_its_wait_is_over(digits: LoadedModel) -> None:
    x, _ = holdout()
    pipeline = pipeline_of(digits)
    batcher = Batcher(pipeline, lambda: (32, 0.05)).start()
    try:
        answers = [batcher.submit(x[index], "test") for index in range(5)]
        results = [answer.result(10) for answer in answers]
    finally:
        batcher.stop()
    assert [r.prediction.class_index for r in results if r.prediction] == list(bare_predictions(x[:5]))
    assert pipeline.batches == 1


def test_a_batch_fills_from_a_submitter_that_is_slower_than_the_worker(digits: LoadedModel) -> None:
    # the worker sleeps until enough requests wait, so a trickle still ends up in one batch, in order
    x, _ = holdout()
    pipeline = pipeline_of(digits)
    batcher = Batcher(pipeline, lambda: (16, 5.0)).start()
    answers = []
    try:
        for index in range(16):
            answers.append(batcher.submit(x[index], "test"))
            threading.Event().wait(0.002)
        results = [answer.result(10) for answer in answers]
    finally:
        batcher.stop()
    assert [r.prediction.class_index for r in results if r.prediction] == list(bare_predictions(x[:16]))
    assert pipeline.batches == 1


def test_an_array_of_the_models_exact_shape_is_still_held_to_max_payload_bytes(digits: LoadedModel) -> None:
    x, _ = holdout()
    sample = np.ascontiguousarray(x[0], dtype=np.float32)
    pipeline = pipeline_of(digits, AppConfig(max_payload_bytes=sample.nbytes - 1))
    refused, *_ = pipeline.process_payloads([sample, sample])
    assert refused.reason == "payload_too_large"
    nan = sample.copy()
    nan.flat[3] = np.nan
    allowed = pipeline_of(digits)
    results = allowed.process_payloads([sample, nan, sample])
    assert [result.reason for result in results] == ["", "non_finite_input", ""]


def test_a_stopped_batcher_answers_a_late_group_at_once(digits: LoadedModel) -> None:
    # a stopped batcher answers late submits at once, through the same Answer
    batcher = Batcher(pipeline_of(digits), lambda: (4, 0.0)).start()
    batcher.stop()
    late = batcher.submit_group([(b"x", "late"), (b"y", "late")])
    assert [answer.result(1).reason for answer in late] == ["shutting_down", "shutting_down"]
