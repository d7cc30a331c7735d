"""The app: wires configuration, model, batching queue, sources, sinks, health, capture, escalation, swap.

Its clients are injected (`IpcClient`, a Stream Manager client), so the core runs without Greengrass;
`__main__` builds the real ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from edgeml_inference.answer import Answer
from edgeml_inference.capture import LowConfidenceCapture
from edgeml_inference.capture_cleanup import ExportedCaptureCleaner, status_stream_of
from edgeml_inference.config import AppConfig
from edgeml_inference.escalation import Escalator
from edgeml_inference.exceptions import ConfigInvalid, InferenceAppError
from edgeml_inference.health import HealthMonitor
from edgeml_inference.hotswap import ModelSwapper
from edgeml_inference.ipc import IpcClient
from edgeml_inference.model import LoadedModel, ModelHolder, load_model
from edgeml_inference.pipeline import Batcher, Pipeline
from edgeml_inference.preprocess import Payload
from edgeml_inference.results import InferenceResult, ResultBatch
from edgeml_inference.sinks.base import AsyncSink
from edgeml_inference.sinks.iotcore import IoTCoreSink
from edgeml_inference.sinks.ipc import IpcTopicSink
from edgeml_inference.sinks.streammanager import (
    StreamSink,
    StreamSpec,
    ensure_streams,
    json_bytes,
    s3_export_task,
)
from edgeml_inference.sources.base import Source
from edgeml_inference.sources.directory import DirectorySource
from edgeml_inference.sources.http import HttpSource
from edgeml_inference.sources.topic import TopicSource

_log = logging.getLogger(__name__)
SOURCE_KEYS = ("input_directory", "input_topic", "http_port")
CAPTURE_BACKLOG = 64


class InferenceApp:
    """One running inference app. `start()` returns once every source is accepting inputs."""

    def __init__(
        self,
        config: AppConfig,
        ipc: IpcClient | None = None,
        streams: Any = None,
        device: str = "device",
        loader: Callable[[Path, tuple[str, ...], int], LoadedModel] = load_model,
    ) -> None:
        self.config = config
        self.ipc = ipc
        self.streams = streams
        self.device = device
        self.loader = loader
        if not config.model_root():
            raise ConfigInvalid("ModelDirectory", "no model directory configured (nor MODEL_DIR)")
        model = loader(Path(config.model_root()), config.execution_providers, config.intra_op_threads)
        self.models = ModelHolder(model)
        self.health = HealthMonitor(model.metadata.baseline, model.metadata.labels)
        self.second_model: LoadedModel | None = self._load_second(config)
        self.result_sinks: list[AsyncSink] = []
        self.health_sinks: list[AsyncSink] = []
        self.capture_sink: AsyncSink | None = None
        self.escalation_sink: AsyncSink | None = None
        queue_size = config.sink_queue_size
        full_wait_s = config.sink_full_wait_ms / 1000.0
        if ipc is not None:
            self.result_sinks.append(
                AsyncSink(
                    IpcTopicSink(ipc, lambda: self.config.results_topic), queue_size, full_wait_s=full_wait_s
                )
            )
            self.result_sinks.append(
                AsyncSink(
                    IoTCoreSink(
                        ipc,
                        lambda: self.config.iot_core_route(),
                        lambda: (self.config.iot_core_batch_size, self.config.iot_core_batch_ms / 1000.0),
                    ),
                    queue_size,
                    full_wait_s=full_wait_s,
                )
            )
            self.health_sinks.append(AsyncSink(IpcTopicSink(ipc, lambda: self.config.health_topic), 64))
            self._add_iot_core_health_sink(config)
            self.escalation_sink = AsyncSink(
                IpcTopicSink(ipc, lambda: self.config.escalation_topic), queue_size
            )
        self._add_stream_sinks(config)
        self.capture = LowConfidenceCapture(lambda: self.config, self._export_capture, device)
        self._capture_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture")
        self._capture_backlog = threading.Semaphore(CAPTURE_BACKLOG)
        self.capture_cleaner: ExportedCaptureCleaner | None = None
        if streams is not None:
            status_stream = lambda: status_stream_of(self.config.capture_stream)  # noqa: E731
            self.capture_cleaner = ExportedCaptureCleaner(streams, status_stream, self.capture)
        self.escalator = Escalator(lambda: self.config, self._forward_escalation, lambda: self.second_model)
        self.pipeline = Pipeline(
            self.models,
            lambda: self.config,
            self.health,
            [self.escalator, self._capture_batch],
            [self._publish_results],
        )
        self.batcher = Batcher(self.pipeline, self._limits)
        self.swapper = ModelSwapper(
            self.models,
            lambda: self.config,
            self.publish_event,
            self._on_swapped,
            loader,
        )
        self.sources: dict[str, Source] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # lifecycle

    def start(self) -> InferenceApp:
        config = self.config
        if self.streams is not None:
            ensure_streams(self.streams, self._stream_specs(config))
        self.batcher.start()
        self._start_sources(config)
        if self.ipc is not None:
            self.ipc.subscribe_to_validate_configuration_updates(self._on_validate)
            self.ipc.subscribe_to_configuration_update(self._on_configuration_update)
            self.ipc.subscribe_to_component_updates(self._on_pre_update, self._on_post_update)
        if self.capture_cleaner is not None:
            self.capture_cleaner.start()
        self._spawn(self._health_loop, "health")
        self._spawn(self._model_poll_loop, "model-poll")
        meta = self.models.current.metadata
        _log.info("edgeml_inference ready: model %s %s, mode %s", meta.name, meta.version, config.mode)
        return self

    def stop(self) -> None:
        self._stop.set()
        for source in list(self.sources.values()):
            source.stop()
        self.sources.clear()
        self.batcher.stop()
        self._capture_pool.shutdown(wait=True)
        if self.capture_cleaner is not None:
            self.capture_cleaner.stop()
        self.publish_health()
        for sink in [*self.result_sinks, *self.health_sinks]:
            sink.close()
        for extra in (self.capture_sink, self.escalation_sink):
            if extra is not None:
                extra.close()
        for thread in self._threads:
            thread.join(5)
        self.models.current.close()
        self._replace_second(None)

    def request_stop(self) -> None:
        """Makes `wait()` return (signal handlers call this)."""
        self._stop.set()

    def wait(self) -> None:
        """Blocks until `request_stop`, in slices: a SIGTERM the kernel hands to another thread (ONNX
        Runtime's, the IPC client's) only sets CPython's flag, and a main thread parked in one endless wait
        runs the handler late (seen here: 30 s, past the nucleus's shutdown timeout)."""
        while not self._stop.wait(0.2):
            pass

    def submit(self, payload: Payload, source: str = "direct") -> Answer:
        return self.batcher.submit(payload, source)

    # configuration

    def _add_stream_sinks(self, config: AppConfig) -> None:
        """The result, health and capture stream sinks of `config` (nothing without Stream Manager)."""
        if self.streams is None:
            return
        if config.result_stream:
            sink = AsyncSink(
                StreamSink(self.streams, config.result_stream),
                config.sink_queue_size,
                full_wait_s=config.sink_full_wait_ms / 1000.0,
            )
            self.result_sinks = [*self.result_sinks, sink]
        if config.health_stream:
            health = AsyncSink(StreamSink(self.streams, config.health_stream), 64)
            self.health_sinks = [*self.health_sinks, health]
        if config.capture_stream:
            self.capture_sink = AsyncSink(StreamSink(self.streams, config.capture_stream), 256)

    def _replace_stream_sinks(self, new: AppConfig) -> None:
        """Live stream keys: the streams of `new` created or updated, its sinks in, the old ones flushed."""
        assert self.streams is not None
        ensure_streams(self.streams, self._stream_specs(new))
        old = [sink for sink in [*self.result_sinks, *self.health_sinks] if isinstance(sink.sink, StreamSink)]
        old_capture = self.capture_sink
        self.result_sinks = [sink for sink in self.result_sinks if not isinstance(sink.sink, StreamSink)]
        self.health_sinks = [sink for sink in self.health_sinks if not isinstance(sink.sink, StreamSink)]
        self.capture_sink = None
        self._add_stream_sinks(new)
        for sink in [*old, *([old_capture] if old_capture is not None else [])]:
            sink.close()

    def _limits(self) -> tuple[int, float]:
        config = self.config
        if config.mode == "continuous":
            return 1, 0.0
        if config.mode == "interval":
            return config.max_batch, 0.0
        return config.max_batch, config.max_wait_ms / 1000.0

    def _scan_period(self) -> float:
        config = self.config
        return config.interval_ms / 1000.0 if config.mode == "interval" else 0.1

    def _on_validate(self, deployment_id: str, configuration: dict[str, Any]) -> None:
        assert self.ipc is not None
        try:
            AppConfig.from_mapping(configuration)
        except ConfigInvalid as error:
            _log.warning("rejecting configuration of deployment %s: %s", deployment_id, error)
            self.ipc.send_configuration_validity_report(
                deployment_id, False, f"invalid {error.key}: {error.reason}"
            )
            return
        self.ipc.send_configuration_validity_report(deployment_id, True, "configuration accepted")

    def _on_configuration_update(self) -> None:
        assert self.ipc is not None
        try:
            new = AppConfig.from_mapping(self.ipc.get_configuration())
        except ConfigInvalid as error:
            _log.error("ignoring an invalid configuration update: %s", error)
            self.publish_event({"event": "configuration_rejected", "key": error.key, "detail": error.reason})
            return
        self.apply_configuration(new)

    def _add_iot_core_health_sink(self, config: AppConfig) -> None:
        """One IoT Core message per health record (never batched: a record is a window already); made only
        once IoTCoreHealthTopic is set (the route is read live after that, "" stops it)."""
        if self.ipc is None or not config.iot_core_health_topic:
            return
        if any(isinstance(sink.sink, IoTCoreSink) for sink in self.health_sinks):
            return
        ipc = self.ipc
        self.health_sinks.append(AsyncSink(IoTCoreSink(ipc, lambda: self.config.iot_core_health_route()), 64))

    def apply_configuration(self, new: AppConfig) -> None:
        """Applies a validated configuration live; sources restart only if their keys changed."""
        old, self.config = self.config, new
        self._add_iot_core_health_sink(new)
        if any(getattr(old, key) != getattr(new, key) for key in SOURCE_KEYS):
            for source in list(self.sources.values()):
                source.stop()
            self.sources.clear()
            self._start_sources(new)
        if self.streams is not None and self._stream_specs(old) != self._stream_specs(new):
            self._replace_stream_sinks(new)
        if old.sink_queue_size != new.sink_queue_size:
            for sink in [*self.result_sinks, *([self.escalation_sink] if self.escalation_sink else [])]:
                sink.resize(new.sink_queue_size)
        for result_sink in self.result_sinks:  # SinkFullWaitMs, live
            result_sink.full_wait_s = new.sink_full_wait_ms / 1000.0
        if self._model_options(old) != self._model_options(new):
            self.swapper.check("configuration")
        if old.escalation_model_directory != new.escalation_model_directory or (
            new.escalation_model_directory and self._model_options(old)[1:] != self._model_options(new)[1:]
        ):
            self._replace_second(self._load_second(new))
        self.publish_event({"event": "configuration_applied"})

    @staticmethod
    def _model_options(config: AppConfig) -> tuple[str, tuple[str, ...], int]:
        return config.model_root(), config.execution_providers, config.intra_op_threads

    def _replace_second(self, model: LoadedModel | None) -> None:
        """Puts `model` in as the second stage and closes the one it replaces (none is mid-run: the
        escalator uses it under its lock)."""
        with self.escalator.lock:
            old, self.second_model = self.second_model, model
        if old is not None:
            old.close()

    def _load_second(self, config: AppConfig) -> LoadedModel | None:
        if not config.escalation_model_directory:
            return None
        try:
            return self.loader(
                Path(config.escalation_model_directory), config.execution_providers, config.intra_op_threads
            )
        except InferenceAppError as error:
            _log.error("second-stage model not loaded: %s", error)
            return None

    def _start_sources(self, config: AppConfig) -> None:
        if config.input_directory:
            self.sources["directory"] = DirectorySource(
                Path(config.input_directory),
                self.submit,
                self._scan_period,
                lambda: self.config.max_payload_bytes,
                submit_group=self.batcher.submit_group,
                retention=lambda: (self.config.processed_keep_count, self.config.processed_keep_hours),
            )
        if config.input_topic and self.ipc is not None:
            self.sources["topic"] = TopicSource(
                self.ipc, config.input_topic, self.submit, on_refused=self._publish_refused
            )
        if config.http_port:
            self.sources["http"] = HttpSource(
                config.http_port,
                self.submit,
                lambda: self.config.max_payload_bytes,
                self.health_report,
                submit_group=self.batcher.submit_group,  # a heavy model's run queued, not run on the loop
            )
        for source in self.sources.values():
            source.start()

    @staticmethod
    def _stream_specs(config: AppConfig) -> list[StreamSpec]:
        return [
            # durability per stream (docs/device-readiness.md): results and capture tasks are fsynced before
            # Stream Manager acknowledges them; health reports are not (the next one replaces a lost one)
            StreamSpec(
                config.result_stream,
                config.stream_max_bytes,
                kinesis_stream=config.result_kinesis_stream,
                flush_on_write=True,
            ),
            # always with its S3 export executor: the bucket is named per task, so CaptureBucket applies live;
            # its status stream tells which captured files are in S3 and can go
            StreamSpec(
                config.capture_stream,
                config.stream_max_bytes,
                s3_export=True,
                status_stream=status_stream_of(config.capture_stream),
                flush_on_write=True,
            ),
            StreamSpec(config.health_stream, min(config.stream_max_bytes, 16 * 1024 * 1024)),
        ]

    # component updates and hot swap

    def _on_pre_update(self, deployment_id: str) -> None:
        """Lets the update go ahead once the in-flight batch has ended."""
        assert self.ipc is not None
        self.swapper.wait_for_batch()
        self.ipc.defer_component_update(deployment_id, 0, "in-flight batch finished")

    def _on_post_update(self, deployment_id: str) -> None:
        self.swapper.check("component_update")

    def _on_swapped(self, model: LoadedModel) -> None:
        self.health.set_model(model.metadata.baseline, model.metadata.labels)

    def _model_poll_loop(self) -> None:
        while not self._stop.wait(max(self.config.model_poll_s, 0.2)):
            if self.config.model_poll_s > 0:
                try:
                    self.swapper.check("poll")
                except Exception:
                    _log.exception("model poll failed")

    # outputs

    def _publish_results(self, results: Sequence[InferenceResult], payloads: Sequence[Payload]) -> None:
        """One offer per sink per batch; the batch is encoded once, on the first sink thread that needs it."""
        if self.result_sinks:
            message = ResultBatch(results)
            for sink in self.result_sinks:
                sink.offer(message)

    def _publish_refused(self, result: InferenceResult) -> None:
        """A topic input refused while stopping: its answer goes straight to ResultsTopic (the sinks may
        already be closed), so the sender sees it was not processed."""
        if self.ipc is not None and self.config.results_topic:
            try:
                self.ipc.publish_to_topic(self.config.results_topic, result.to_json_bytes())
            except Exception as error:
                _log.warning("cannot publish the refusal of %s: %s", result.request_id, error)

    def _capture_batch(self, results: Sequence[InferenceResult], payloads: Sequence[Payload]) -> None:
        if self.capture.active():
            for result, payload in zip(results, payloads, strict=True):
                self._maybe_capture(result, payload)

    def _maybe_capture(self, result: InferenceResult, payload: Payload) -> None:
        if not self.capture.wants(result):
            return
        if not self._capture_backlog.acquire(blocking=False):
            self.capture.over_budget += 1
            return

        def store() -> None:
            try:
                self.capture.store(result, payload)
            except OSError as error:
                _log.warning("capture failed: %s", error)
            finally:
                self._capture_backlog.release()

        self._capture_pool.submit(store)

    def _export_capture(self, path: Path, key: str) -> None:
        if self.capture_sink is not None:
            self.capture_sink.offer(s3_export_task(str(path.resolve()), self.config.capture_bucket, key))

    def _forward_escalation(self, topic: str, payload: bytes) -> None:
        if self.escalation_sink is not None:
            self.escalation_sink.offer(payload)

    def health_report(self) -> dict[str, Any]:
        """The current window (not reset) with model and sink figures."""
        return self._decorate(self.health.snapshot(reset=False))

    def _decorate(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = self.models.current.metadata
        body.update(
            {
                "kind": "health",
                "device": self.device,
                "timestamp": round(time.time(), 3),
                "model": {
                    "name": meta.name,
                    "version": meta.version,
                    "providers": self.models.current.backend.providers,
                },
                "sinks": {sink.name: sink.stats() for sink in self.result_sinks},
                "captured": self.capture.captured,
                "captures_exported_removed": self.capture.exported_removed,
                "escalated": self.escalator.escalated,
                "swaps": {"done": self.swapper.swaps, "failed": self.swapper.failures},
            }
        )
        return body

    def publish_health(self) -> None:
        body = self._decorate(self.health.snapshot(reset=True))
        encoded = json_bytes(body)
        for sink in self.health_sinks:
            sink.offer(encoded)

    def publish_event(self, event: dict[str, Any]) -> None:
        encoded = json_bytes(
            {"kind": "event", "device": self.device, "timestamp": round(time.time(), 3), **event}
        )
        for sink in self.health_sinks:
            sink.offer(encoded)

    def _health_loop(self) -> None:
        while not self._stop.wait(self.config.health_interval_s):
            try:
                self.publish_health()
            except Exception:
                _log.exception("health report failed")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
