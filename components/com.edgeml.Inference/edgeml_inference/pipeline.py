"""The pipeline: payload -> preprocess -> backend (batched) -> postprocess -> result, never raising.

`Pipeline.process` answers a list of requests with the model in service, holding the model lock for the
whole batch (a hot swap waits for it). Every failure becomes an error result with a reason code; the process
stays alive. `Batcher` is the one queue that feeds it from every source.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence

import numpy as np

from edgeml_inference.answer import Answer
from edgeml_inference.config import AppConfig
from edgeml_inference.exceptions import BadInput, BadOutput
from edgeml_inference.health import HealthMonitor
from edgeml_inference.model import LoadedModel, ModelHolder
from edgeml_inference.preprocess import Payload, finite_rows, payload_size
from edgeml_inference.results import InferenceResult, error_result

_log = logging.getLogger(__name__)
BatchHook = Callable[[Sequence[InferenceResult], Sequence[Payload]], None]


_ID_PREFIX = uuid.uuid4().hex[:12]
_ID_COUNTER = itertools.count()


def new_request_id() -> str:
    """Unique per process start and request, without a urandom call per request."""
    return f"{_ID_PREFIX}-{next(_ID_COUNTER)}"


class Request:
    """One input waiting for its `answer`. `prepared` is what the submitting thread pre-processed
    (Pipeline.prepare) for `prepared_by`, the model then in service: the tensor, or the BadInput it raised.
    A slotted class with a plain __init__: a dataclass with default factories cost ~1 us more per request."""

    __slots__ = ("answer", "payload", "prepared", "prepared_by", "received", "request_id", "source")

    def __init__(self, payload: Payload, source: str, request_id: str | None = None) -> None:
        self.payload = payload
        self.source = source
        self.request_id = new_request_id() if request_id is None else request_id
        self.received = time.perf_counter()
        self.answer = Answer()
        self.prepared_by: LoadedModel | None = None
        self.prepared: np.ndarray | BadInput | None = None


class Pipeline:
    """Answers requests with the model held by `models`. Each batch's results and payloads go to `hooks`
    first (escalation, capture: they may amend a result), then to `batch_hooks` (the sinks: one hand-off per
    batch); a hook with nothing to do for a batch returns after one look at the configuration."""

    def __init__(
        self,
        models: ModelHolder,
        config: Callable[[], AppConfig],
        health: HealthMonitor,
        hooks: list[BatchHook] | None = None,
        batch_hooks: list[BatchHook] | None = None,
    ) -> None:
        self.models = models
        self.config = config
        self.health = health
        self.hooks: list[BatchHook] = list(hooks or [])
        self.batch_hooks: list[BatchHook] = list(batch_hooks or [])
        self.batches = 0

    def infer(self, payload: Payload, source: str = "direct") -> InferenceResult:
        """One request, answered synchronously (no queue)."""
        return self.process([Request(payload, source)])[0]

    def process_payloads(self, payloads: list[Payload], source: str = "direct") -> list[InferenceResult]:
        """One batch of payloads, answered synchronously (no queue)."""
        return self.process([Request(payload, source) for payload in payloads])

    def process(self, requests: list[Request]) -> list[InferenceResult]:
        """Answers every request (an error result for a bad one) and resolves its answer."""
        config = self.config()
        with self.models.lock:
            model = self.models.current
            results = self._answer(model, requests, config)
            self.batches += 1
        now, stamp = time.perf_counter(), time.time()
        for request, result in zip(requests, results, strict=True):
            result.latency_ms = (now - request.received) * 1000.0
            result.timestamp = stamp
        self._finish(requests, results)
        return results

    @staticmethod
    def _checks_each(model: LoadedModel) -> bool:
        # A batch that is stacked anyway is checked for NaN/infinity in one pass after stacking (a per-sample
        # check cost more than a small model's run); a fixed batch-1 model checks each sample as before.
        return model.backend.fixed_batch == 1 or not model.preprocess.defers_finite_check

    @staticmethod
    def _preprocess(model: LoadedModel, request: Request, config: AppConfig, check_each: bool) -> np.ndarray:
        size = payload_size(request.payload)
        if size > config.max_payload_bytes:
            raise BadInput("payload_too_large", f"{size} bytes > MaxPayloadBytes {config.max_payload_bytes}")
        return model.preprocess(request.payload, check_each)

    def prepare(self, request: Request) -> None:
        """Decodes an encoded payload on the calling (source) thread, for the model in service now, so the
        decoding of the next input overlaps the batcher's run of the current one (Pillow and the runtimes
        release the GIL). A model swapped in meanwhile re-does it; unexpected failures are left to
        `_answer`."""
        if not isinstance(request.payload, bytes):
            return
        model = self.models.current
        try:
            request.prepared = self._preprocess(model, request, self.config(), self._checks_each(model))
        except BadInput as error:
            request.prepared = error
        except Exception:  # reported by _answer, which runs it again
            return
        request.prepared_by = model

    def _answer(
        self, model: LoadedModel, requests: list[Request], config: AppConfig
    ) -> list[InferenceResult]:
        results: list[InferenceResult | None] = [None] * len(requests)
        tensors: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        check_each = self._checks_each(model)
        # Arrays that are the model's input as they are skip the general path (its four calls a request
        # were ~1 us of a small model's ~3 us per result); their finiteness is checked per batch below.
        as_is = None if check_each else model.preprocess.as_is
        limit = config.max_payload_bytes
        for position, request in enumerate(requests):
            payload = request.payload
            if as_is and type(payload) is np.ndarray and payload.nbytes <= limit and as_is(payload):
                tensors.setdefault(payload.shape, []).append((position, payload))
                continue
            try:
                prepared = request.prepared if request.prepared_by is model else None
                if isinstance(prepared, BadInput):
                    raise prepared
                if prepared is None:
                    prepared = self._preprocess(model, request, config, check_each)
                tensor = prepared
                tensors.setdefault(tensor.shape, []).append((position, tensor))
            except BadInput as error:
                results[position] = self._error(model, request, error.reason, error.detail)
            except Exception as error:  # a decoder bug must not take the process down
                _log.exception("preprocessing failed unexpectedly")
                results[position] = self._error(model, request, "internal_error", f"preprocessing: {error}")
        for group in tensors.values():
            stacked: np.ndarray | None = None
            if not check_each:
                group, stacked = self._finite_only(model, requests, group, results)
            if group:
                self._run_group(model, requests, group, results, config, stacked)
        return [result for result in results if result is not None]

    def _finite_only(
        self,
        model: LoadedModel,
        requests: list[Request],
        group: list[tuple[int, np.ndarray]],
        results: list[InferenceResult | None],
    ) -> tuple[list[tuple[int, np.ndarray]], np.ndarray | None]:
        """The samples of `group` without NaN/infinity (the others get `non_finite_input`), and, when all of
        several are, the batch stacked for the check, so that it is run as it is, not stacked again."""
        if len(group) == 1:
            stacked = None
            finite = finite_rows(group[0][1][None]).tolist()
        else:
            stacked = np.stack([tensor for _, tensor in group])
            finite = finite_rows(stacked).tolist()
        if all(finite):
            return group, stacked
        for (position, _), ok in zip(group, finite, strict=True):
            if not ok:
                results[position] = self._error(
                    model, requests[position], "non_finite_input", "the tensor holds NaN or infinity"
                )
        return [item for item, ok in zip(group, finite, strict=True) if ok], None

    def _run_group(
        self,
        model: LoadedModel,
        requests: list[Request],
        group: list[tuple[int, np.ndarray]],
        results: list[InferenceResult | None],
        config: AppConfig,
        stacked: np.ndarray | None,
    ) -> None:
        positions = [position for position, _ in group]
        try:
            if stacked is not None:
                outputs = run_batched(model, stacked)
            else:
                outputs = run_samples(model, [tensor for _, tensor in group])
            predictions = model.postprocess(outputs, config.top_k, config.confidence_threshold)
        except Exception as error:  # runtime failure: every sample of the group gets the reason
            _log.warning("backend run failed: %s", error)
            for position in positions:
                results[position] = self._error(model, requests[position], "backend_error", str(error)[:500])
            return
        meta = model.metadata
        for position, prediction in zip(positions, predictions, strict=True):
            request = requests[position]
            if isinstance(prediction, BadOutput):
                results[position] = self._error(model, request, prediction.reason, prediction.detail)
            else:
                results[position] = InferenceResult(  # timestamp: set by process() for the whole batch
                    request.request_id, request.source, "ok", meta.name, meta.version, prediction, timestamp=0
                )

    @staticmethod
    def _error(model: LoadedModel, request: Request, reason: str, detail: str) -> InferenceResult:
        meta = model.metadata
        return error_result(
            request.request_id, request.source, reason, detail, model=meta.name, model_version=meta.version
        )

    def _finish(self, requests: list[Request], results: list[InferenceResult]) -> None:
        self.health.record_many(results)
        hooks = self.hooks
        if hooks or self.batch_hooks:
            payloads = [request.payload for request in requests]
            for hook in [*hooks, *self.batch_hooks]:
                try:
                    hook(results, payloads)
                except Exception:
                    _log.exception("result hook failed")
        for request, result in zip(requests, results, strict=True):
            request.answer.set_result(result)


def run_samples(model: LoadedModel, samples: list[np.ndarray]) -> np.ndarray:
    """Runs samples (no batch axis) as one batch. A model with a fixed batch of 1 gets each sample as a view
    (`sample[None]`): stacking 32 EfficientNet frames (19 MB) only to slice them apart again cost ~2 ms."""
    fixed = model.backend.fixed_batch
    if len(samples) == 1 and (fixed is None or fixed == 1):
        return model.backend.run(samples[0][None])
    if fixed == 1:
        return np.concatenate([model.backend.run(sample[None]) for sample in samples])
    return run_batched(model, np.stack(samples))


def run_batched(model: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """Runs `batch`, in chunks of the model's fixed batch size (last one padded) when it has one."""
    fixed = model.backend.fixed_batch
    if not fixed or fixed == batch.shape[0]:
        return model.backend.run(batch)
    outputs: list[np.ndarray] = []
    for start in range(0, batch.shape[0], fixed):
        chunk = batch[start : start + fixed]
        count = chunk.shape[0]
        if count < fixed:
            chunk = np.concatenate([chunk, np.zeros((fixed - count, *chunk.shape[1:]), dtype=chunk.dtype)])
        outputs.append(model.backend.run(chunk)[:count])
    return np.concatenate(outputs)


class Batcher:
    """The one batching queue for every source; batches of up to `limits()` = (max batch, max wait in s).

    With a batch size of 1 (continuous mode) and nothing waiting, the submitting thread answers its own
    request at once instead of handing it to the worker (a thread switch costs more than a small model).
    The queue is a `queue.SimpleQueue` (put and get in C, no Condition per call: ~2 us a request less than
    `queue.Queue`), bounded here by its length: past `max_queue` waiting groups, a request is refused.
    While a batch fills, the worker takes what is queued, then sleeps until `wanted` more requests wait (a
    submitter that sees them sets `_filled`) or the batch's wait is over, instead of waking on every
    request: one wake-up per batch, not one GIL hand-off per request.
    """

    def __init__(
        self, pipeline: Pipeline, limits: Callable[[], tuple[int, float]], max_queue: int = 10_000
    ) -> None:
        self.pipeline = pipeline
        self.limits = limits
        self.max_queue = max_queue
        self._queue: queue.SimpleQueue[list[Request] | None] = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._work, name="batcher", daemon=True)
        self._busy = threading.Lock()  # held by whoever runs a batch: the worker or an inline caller
        self._filled = threading.Event()  # set by a submitter once `_wanted` groups wait for a filling batch
        self._wanted = 1 << 30  # no batch is filling
        self.rejected = 0
        self.inline = 0

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def submit(self, payload: Payload, source: str, request_id: str | None = None) -> Answer:
        """Queues one request; the answer always resolves (an error result when full or closed)."""
        request = Request(payload, source, request_id)
        idle = not self._stopped.is_set() and self.limits()[0] == 1 and self._queue.empty()
        if idle and self._busy.acquire(blocking=False):
            try:
                self._run([request])
                self.inline += 1
            finally:
                self._busy.release()
            return request.answer
        self.pipeline.prepare(request)
        self._enqueue([request])
        return request.answer

    def submit_group(self, items: Sequence[tuple[Payload, str]]) -> list[Answer]:
        """Queues inputs that arrived together (one directory scan) to be batched together, up to MaxBatch."""
        requests = [Request(payload, source) for payload, source in items]
        max_batch = max(1, self.limits()[0])
        for start in range(0, len(requests), max_batch):  # each batch queued once decoded: the worker runs
            chunk = requests[start : start + max_batch]  # one batch while the next is being decoded
            for request in chunk:
                self.pipeline.prepare(request)
            self._enqueue(chunk)
        return [request.answer for request in requests]

    def _enqueue(self, requests: list[Request]) -> None:
        if self._stopped.is_set():
            self._refuse(requests, "shutting_down", "the app is stopping")
            return
        if self._queue.qsize() >= self.max_queue:
            self.rejected += len(requests)
            self._refuse(requests, "overloaded", "the batching queue is full")
            return
        self._queue.put(requests)
        if len(requests) > 1 or self._queue.qsize() >= self._wanted:
            self._filled.set()

    def _refuse(self, requests: list[Request], reason: str, detail: str) -> None:
        for request in requests:
            result = error_result(request.request_id, request.source, reason, detail)
            if request.answer.set_result(result) and reason == "overloaded":
                self.pipeline.health.record(result)

    def _work(self) -> None:
        get = self._queue.get
        while True:
            first = get()
            if first is None:
                return
            max_batch, max_wait_s = self.limits()
            batch = list(first)
            stop = self._fill(batch, max_batch, time.perf_counter() + max_wait_s)
            with self._busy:
                for start in range(0, len(batch), max_batch):  # a group larger than MaxBatch runs in chunks
                    self._run(batch[start : start + max_batch])
            if stop:
                return

    def _fill(self, batch: list[Request], max_batch: int, deadline: float) -> bool:
        """Adds queued requests to `batch` until it holds `max_batch` or `deadline` passes; True if the stop
        marker was taken meanwhile."""
        get, queued, filled = self._queue.get, self._queue.qsize, self._filled
        while len(batch) < max_batch:
            try:
                item = get(block=False)
            except queue.Empty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    return False
                filled.clear()
                self._wanted = max_batch - len(batch)
                if queued() < self._wanted:  # looked at after `_wanted` is set: no submit goes unseen
                    filled.wait(remaining)
                self._wanted = 1 << 30
                continue
            if item is None:
                return True
            batch.extend(item)
        return False

    def _run(self, batch: list[Request]) -> None:
        try:
            self.pipeline.process(batch)
        except Exception as error:  # pipeline.process catches per request; this is the last guard
            _log.exception("batch failed")
            for request in batch:
                request.answer.set_result(
                    error_result(request.request_id, request.source, "internal_error", str(error))
                )

    def stop(self, timeout: float = 10.0) -> None:
        """Answers what is queued, then stops the worker."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._thread.is_alive():
            self._queue.put(None)
            self._filled.set()  # a batch waiting to fill runs now, then the worker takes the stop marker
            self._thread.join(timeout)
        while True:  # requests that raced the stop: answered, never left hanging
            try:
                group = self._queue.get(block=False)
            except queue.Empty:
                return
            if group is not None:
                self._refuse(group, "shutting_down", "the app is stopping")
