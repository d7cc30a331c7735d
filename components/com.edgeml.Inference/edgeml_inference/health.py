"""Health of the app: latency percentiles, throughput, errors, confidence, class histogram, PSI drift."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from typing import Any

import numpy as np

from edgeml_inference.metadata import Baseline
from edgeml_inference.results import InferenceResult

PSI_EPSILON = 1e-4


def psi(expected: list[float] | tuple[float, ...], actual: list[float] | tuple[float, ...]) -> float:
    """Population stability index sum((a - e) * ln(a / e)); empty buckets are floored at 1e-4."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_EPSILON), max(a, PSI_EPSILON)
        total += (a - e) * math.log(a / e)
    return total


class HealthMonitor:
    """Thread-safe counters over one reporting window (`snapshot(reset=True)` starts the next)."""

    def __init__(self, baseline: Baseline, labels: tuple[str, ...], window: int = 10_000) -> None:
        self._lock = threading.Lock()
        self.baseline = baseline
        self.labels = labels
        self._window = window
        self._reset(time.monotonic())
        self.total_requests = 0
        self.total_errors = 0
        self.errors_by_reason: Counter[str] = Counter()

    def _reset(self, now: float) -> None:
        self._started = now
        self._latencies: deque[float] = deque(maxlen=self._window)
        self._confidences: deque[float] = deque(maxlen=self._window)
        self._classes: Counter[int] = Counter()
        self._count = 0
        self._errors = 0
        self._window_reasons: Counter[str] = Counter()

    def set_model(self, baseline: Baseline, labels: tuple[str, ...]) -> None:
        with self._lock:
            self.baseline, self.labels = baseline, labels

    def record(self, result: InferenceResult) -> None:
        self.record_many([result])

    def record_many(self, results: list[InferenceResult]) -> None:
        """`record` for each of a batch's results, under one lock acquisition."""
        with self._lock:
            count = len(results)
            self._count += count
            self.total_requests += count
            self._latencies.extend([result.latency_ms for result in results])
            for result in results:
                prediction = result.prediction
                if prediction is None:
                    self._errors += 1
                    self.total_errors += 1
                    self._window_reasons[result.reason] += 1
                    self.errors_by_reason[result.reason] += 1
                else:
                    self._confidences.append(prediction.confidence)
                    self._classes[prediction.class_index] += 1

    def snapshot(self, reset: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            latencies = np.asarray(self._latencies, dtype=np.float64)
            confidences = list(self._confidences)
            classes = dict(self._classes)
            elapsed = max(now - self._started, 1e-9)
            body: dict[str, Any] = {
                "window_s": round(elapsed, 3),
                "requests": self._count,
                "throughput_per_s": round(self._count / elapsed, 3),
                "errors": self._errors,
                "errors_by_reason": dict(self._window_reasons),
                "total_requests": self.total_requests,
                "total_errors": self.total_errors,
            }
            baseline, labels = self.baseline, self.labels
            if reset:
                self._reset(now)
        if latencies.size:
            p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
            body["latency_ms"] = {"p50": float(p50), "p95": float(p95), "p99": float(p99)}
        else:
            body["latency_ms"] = {"p50": None, "p95": None, "p99": None}
        body["mean_confidence"] = float(np.mean(confidences)) if confidences else None
        histogram = [classes.get(index, 0) for index in range(max(len(labels), max(classes, default=-1) + 1))]
        body["class_histogram"] = {
            (labels[index] if index < len(labels) else str(index)): count
            for index, count in enumerate(histogram)
        }
        body["drift"] = self._drift(baseline, histogram, confidences)
        return body

    @staticmethod
    def _drift(baseline: Baseline, histogram: list[int], confidences: list[float]) -> dict[str, float | None]:
        drift: dict[str, float | None] = {"class_psi": None, "confidence_psi": None}
        seen = sum(histogram)
        expected = baseline.class_frequencies
        if seen and expected and len(histogram) <= len(expected):
            actual = [count / seen for count in histogram] + [0.0] * (len(expected) - len(histogram))
            drift["class_psi"] = round(psi(expected, actual), 6)
        bins, frequencies = baseline.confidence_bins, baseline.confidence_frequencies
        if confidences and len(bins) == len(frequencies) + 1 and frequencies:
            counts, _ = np.histogram(np.clip(confidences, bins[0], bins[-1]), bins=np.asarray(bins))
            actual_conf = [float(count) / len(confidences) for count in counts]
            drift["confidence_psi"] = round(psi(frequencies, actual_conf), 6)
        return drift
