"""The component's configuration: every key of the recipe's DefaultConfiguration, parsed and validated.

Keys are the Greengrass configuration keys (PascalCase). `AppConfig.from_mapping` accepts the dict that IPC
GetConfiguration returns; unknown keys are ignored, a bad value raises `ConfigInvalid` naming its key. An
empty string turns an optional output (topic, stream) off.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

from edgeml_inference.exceptions import ConfigInvalid

Mode = Literal["interval", "continuous", "microbatch"]
MODES: tuple[Mode, ...] = ("interval", "continuous", "microbatch")
KNOWN_PROVIDERS = ("CPU", "CUDA", "TensorRT", "OpenVINO")
T = TypeVar("T")


@dataclass(frozen=True)
class AppConfig:
    """One validated configuration. Field names are the snake_case of the Greengrass keys (see KEYS)."""

    model_directory: str = ""
    execution_providers: tuple[str, ...] = ("auto",)  # the GPU provider ONNX Runtime has, else CPU
    intra_op_threads: int = 1
    mode: Mode = "microbatch"
    interval_ms: int = 1000
    max_batch: int = 8
    max_wait_ms: int = 10
    input_directory: str = ""
    processed_keep_count: int = 10_000  # answered inputs kept in done/ and in failed/; 0: no limit
    processed_keep_hours: float = 168.0  # hours they are kept; 0: no limit
    input_topic: str = ""
    http_port: int = 0  # 0: no HTTP endpoint; it always binds 127.0.0.1
    max_payload_bytes: int = 16 * 1024 * 1024
    results_topic: str = "edgeml/inference/results"
    iot_core_topic: str = ""
    iot_core_qos: int = 1
    iot_core_batch_size: int = 50  # results per IoT Core message; 1: one message per result
    iot_core_batch_ms: int = 1000  # longest a result waits for its batch
    result_stream: str = "EdgemlInferenceResults"
    result_kinesis_stream: str = ""
    stream_max_bytes: int = 64 * 1024 * 1024
    stream_manager_wait_s: float = 30.0  # a configured stream unreachable this long: ERRORED, exit 4
    sink_queue_size: int = 1024
    sink_full_wait_ms: int = 0  # a full result sink: wait this long for room, then drop the oldest
    top_k: int = 3
    confidence_threshold: float = 0.5
    capture_stream: str = "EdgemlCapturedInputs"
    capture_directory: str = ""
    capture_bucket: str = ""
    capture_key_prefix: str = "captures"
    capture_sample_rate: float = 0.1
    capture_disk_budget_bytes: int = 50 * 1024 * 1024
    health_topic: str = "edgeml/inference/health"
    # AWS IoT Core topic of the same records: what the fleet's health topic rules turn into CloudWatch
    # metrics for alarms and rollout gates ("" turns it off).
    iot_core_health_topic: str = ""
    health_stream: str = "EdgemlInferenceHealth"
    health_interval_s: float = 60.0
    escalation_topic: str = ""
    escalation_threshold: float = 0.0  # 0 turns the two-stage option off
    escalation_model_directory: str = ""
    model_poll_s: float = 5.0
    thing_name: str = field(default_factory=lambda: os.environ.get("AWS_IOT_THING_NAME", "device"))
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AppConfig:
        """Parses a Greengrass configuration dict; raises ConfigInvalid naming the first bad key."""
        if not isinstance(values, Mapping):
            raise ConfigInvalid("<root>", "the configuration must be an object")
        parsed: dict[str, Any] = {}
        for key, (attribute, parse) in KEYS.items():
            if key in values:
                parsed[attribute] = parse(key, values[key])
        config = cls(**parsed, extra={k: v for k, v in values.items() if k not in KEYS})
        config.check()
        return config

    def check(self) -> None:
        """Cross-field rules."""
        if self.mode == "microbatch" and self.max_batch < 1:
            raise ConfigInvalid("MaxBatch", "must be >= 1 in microbatch mode")
        if self.http_port and not 1024 <= self.http_port <= 65535:
            raise ConfigInvalid("HttpPort", "must be 0 (off) or 1024..65535")

    def iot_core_route(self) -> tuple[str, int]:
        """IoTCoreTopic with {iot:thingName} filled in (when the nucleus left it), and the QoS."""
        return self._own_topic(self.iot_core_topic), self.iot_core_qos

    def iot_core_health_route(self) -> tuple[str, int]:
        """IoTCoreHealthTopic with {iot:thingName} filled in, and the results' QoS (1: the nucleus spools
        health records while offline, so a gate sees the window the device was cut off in)."""
        return self._own_topic(self.iot_core_health_topic), self.iot_core_qos

    def _own_topic(self, topic: str) -> str:
        """{iot:thingName} in a topic, as the nucleus leaves it without interpolateComponentConfiguration."""
        return topic.replace("{iot:thingName}", self.thing_name)

    def uses_stream_manager(self) -> bool:
        """Whether any Stream Manager stream is configured (result, health or capture)."""
        return bool(self.result_stream or self.health_stream or self.capture_stream)

    def model_root(self) -> str:
        """ModelDirectory, or when empty the MODEL_DIR environment variable (the recipe sets it)."""
        return self.model_directory or os.environ.get("MODEL_DIR", "")

    def capture_root(self) -> str:
        """CaptureDirectory, or capture/ in the working (Greengrass work) folder when empty."""
        return self.capture_directory or "capture"

    def replace(self, **changes: Any) -> AppConfig:
        return dataclasses.replace(self, **changes)


def _int(low: int, high: int) -> Callable[[str, Any], int]:
    def parse(key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise ConfigInvalid(key, f"expected an integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int):
            raise ConfigInvalid(key, f"expected an integer, got {value!r}")
        if not low <= value <= high:
            raise ConfigInvalid(key, f"{value} is outside {low}..{high}")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str, Any], float]:
    def parse(key: str, value: Any) -> float:
        if isinstance(value, bool):
            raise ConfigInvalid(key, f"expected a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigInvalid(key, f"expected a number, got {value!r}") from None
        if not isinstance(value, int | float) or value != value:
            raise ConfigInvalid(key, f"expected a number, got {value!r}")
        if not low <= float(value) <= high:
            raise ConfigInvalid(key, f"{value} is outside {low}..{high}")
        return float(value)

    return parse


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigInvalid(key, f"expected a string, got {value!r}")
    return value


def _topic(key: str, value: Any) -> str:
    topic = _str(key, value)
    if any(char in topic for char in "#+") or len(topic) > 256:
        raise ConfigInvalid(key, f"{topic!r} is not a topic to publish to (no wildcards, <= 256 chars)")
    return topic


def _mode(key: str, value: Any) -> Mode:
    if value not in MODES:
        raise ConfigInvalid(key, f"expected one of {', '.join(MODES)}, got {value!r}")
    return cast(Mode, value)


def _qos(key: str, value: Any) -> int:
    qos = _int(0, 1)(key, value)
    return qos


def _providers(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not value or not all(isinstance(item, str) for item in value):
        raise ConfigInvalid(key, f"expected a non-empty list of provider names, got {value!r}")
    if "auto" in value:
        if len(value) != 1:
            raise ConfigInvalid(key, f"'auto' stands alone (GPU provider if any, else CPU), got {value!r}")
        return ("auto",)
    unknown = [item for item in value if item not in KNOWN_PROVIDERS]
    if unknown:
        raise ConfigInvalid(key, f"unknown provider(s) {unknown}; known: {', '.join(KNOWN_PROVIDERS)}")
    return tuple(value)


GIB = 1024**3
KEYS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "ModelDirectory": ("model_directory", _str),
    "ExecutionProviders": ("execution_providers", _providers),
    "IntraOpThreads": ("intra_op_threads", _int(0, 256)),
    "Mode": ("mode", _mode),
    "IntervalMs": ("interval_ms", _int(1, 3_600_000)),
    "MaxBatch": ("max_batch", _int(1, 1024)),
    "MaxWaitMs": ("max_wait_ms", _int(0, 60_000)),
    "InputDirectory": ("input_directory", _str),
    "ProcessedKeepCount": ("processed_keep_count", _int(0, 100_000_000)),
    "ProcessedKeepHours": ("processed_keep_hours", _float(0.0, 87_600.0)),
    "InputTopic": ("input_topic", _str),
    "HttpPort": ("http_port", _int(0, 65535)),
    "MaxPayloadBytes": ("max_payload_bytes", _int(1, GIB)),
    "ResultsTopic": ("results_topic", _topic),
    "IoTCoreTopic": ("iot_core_topic", _topic),
    "IoTCoreQos": ("iot_core_qos", _qos),
    "IoTCoreBatchSize": ("iot_core_batch_size", _int(1, 1000)),
    "IoTCoreBatchMs": ("iot_core_batch_ms", _int(0, 60_000)),
    "IoTCoreHealthTopic": ("iot_core_health_topic", _topic),
    "ResultStream": ("result_stream", _str),
    "ResultKinesisStream": ("result_kinesis_stream", _str),
    "StreamMaxBytes": ("stream_max_bytes", _int(1024, 64 * GIB)),
    "StreamManagerWaitS": ("stream_manager_wait_s", _float(0.0, 3600.0)),
    "SinkQueueSize": ("sink_queue_size", _int(1, 1_000_000)),
    "SinkFullWaitMs": ("sink_full_wait_ms", _int(0, 60_000)),
    "TopK": ("top_k", _int(1, 1000)),
    "ConfidenceThreshold": ("confidence_threshold", _float(0.0, 1.0)),
    "CaptureStream": ("capture_stream", _str),
    "CaptureDirectory": ("capture_directory", _str),
    "CaptureBucket": ("capture_bucket", _str),
    "CaptureKeyPrefix": ("capture_key_prefix", _str),
    "CaptureSampleRate": ("capture_sample_rate", _float(0.0, 1.0)),
    "CaptureDiskBudgetBytes": ("capture_disk_budget_bytes", _int(0, 64 * GIB)),
    "HealthTopic": ("health_topic", _topic),
    "HealthStream": ("health_stream", _str),
    "HealthIntervalS": ("health_interval_s", _float(0.1, 86_400.0)),
    "EscalationTopic": ("escalation_topic", _topic),
    "EscalationThreshold": ("escalation_threshold", _float(0.0, 1.0)),
    "EscalationModelDirectory": ("escalation_model_directory", _str),
    "ModelPollS": ("model_poll_s", _float(0.0, 3600.0)),
}
"""Greengrass key -> (AppConfig field, parser). The recipe's DefaultConfiguration uses these keys."""
