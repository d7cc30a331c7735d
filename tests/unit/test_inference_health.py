"""Health metrics: latency percentiles, errors, confidence, class histogram and PSI drift."""

from __future__ import annotations

import pytest
from edgeml_inference.health import HealthMonitor, psi
from edgeml_inference.metadata import Baseline
from edgeml_inference.postprocess import Prediction
from edgeml_inference.results import InferenceResult, error_result

BASELINE = Baseline(
    class_frequencies=(0.5, 0.5),
    confidence_bins=(0.0, 0.5, 0.9, 1.0),
    confidence_frequencies=(0.1, 0.4, 0.5),
)


def ok(index: int, confidence: float, latency_ms: float) -> InferenceResult:
    prediction = Prediction(
        str(index), index, confidence, ((str(index), index, confidence),), confidence > 0.5
    )
    return InferenceResult("id", "test", "ok", "m", "1", prediction, latency_ms=latency_ms)


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift() -> None:
    assert psi([0.25, 0.75], [0.25, 0.75]) == pytest.approx(0.0)
    assert psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])
    assert psi([0.5, 0.5], [1.0, 0.0]) > 0.25  # an empty bucket is floored, not infinite


def test_snapshot_reports_what_was_recorded() -> None:
    monitor = HealthMonitor(BASELINE, ("cat", "dog"))
    for latency in range(1, 101):
        monitor.record(ok(latency % 2, 0.95, float(latency)))
    monitor.record(error_result("e", "test", "corrupt_image", "bad"))
    body = monitor.snapshot()
    assert body["requests"] == 101 and body["errors"] == 1
    assert body["errors_by_reason"] == {"corrupt_image": 1}
    assert body["latency_ms"]["p50"] == pytest.approx(50.5, abs=1)
    assert body["latency_ms"]["p99"] == pytest.approx(99, abs=1.5)
    assert body["class_histogram"] == {"cat": 50, "dog": 50}
    assert body["mean_confidence"] == pytest.approx(0.95)
    assert body["drift"]["class_psi"] == pytest.approx(0.0, abs=1e-9)
    assert body["drift"]["confidence_psi"] > 0.5  # every confidence in the top bin vs 50 % at training


def test_drift_flags_a_class_shift_and_reset_starts_a_new_window() -> None:
    monitor = HealthMonitor(BASELINE, ("cat", "dog"))
    for _ in range(100):
        monitor.record(ok(0, 0.6, 1.0))
    shifted = monitor.snapshot(reset=True)
    assert shifted["drift"]["class_psi"] > 1.0
    fresh = monitor.snapshot()
    assert fresh["requests"] == 0 and fresh["drift"]["class_psi"] is None
    assert fresh["total_requests"] == 100
