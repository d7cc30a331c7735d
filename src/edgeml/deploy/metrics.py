"""The app's health metrics per device from CloudWatch (GetMetricData), over a ring's soak.

The topic rules of edgeml.config.healthrule put each health record field into `<Metric>/<thing>` in the
spec's namespace. A gate reads those per device, in periods of at least a minute (at most MAX_PERIODS of
them across the soak), and aggregates each device's series: Requests and Errors summed, LatencyP99 and
the PSIs as their maximum, MeanConfidence as the mean of the periods' averages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from edgeml.config.healthrule import HEALTH_METRICS
from edgeml.deploy.aws import Clients, call_failed

MAX_QUERIES = 500  # GetMetricData's limit per call (BOTO cloudwatch MetricDataQueries max)
MAX_PERIODS = 10
STATISTIC = {
    "Requests": "Sum",
    "Errors": "Sum",
    "LatencyP99": "Maximum",
    "MeanConfidence": "Average",
    "ClassPsi": "Maximum",
    "ConfidencePsi": "Maximum",
}
assert set(STATISTIC) == {m.name for m in HEALTH_METRICS}


@dataclass
class DeviceHealth:
    """One device's health over the soak; None = no datapoint."""

    requests: float = 0.0
    errors: float = 0.0
    latency_p99_ms: float | None = None
    mean_confidence: float | None = None
    drift_psi: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None


@dataclass
class HealthWindow:
    start: float
    end: float
    period_s: int
    devices: dict[str, DeviceHealth] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # ring metric over time


def period_for(start: float, end: float, minimum: int) -> int:
    span = max(end - start, 60.0)
    return max(minimum, 60 * math.ceil(span / MAX_PERIODS / 60))


def read_health(
    clients: Clients,
    namespace: str,
    things: Sequence[str],
    metrics: Sequence[str],
    start: float,
    end: float,
    minimum_period_s: int = 60,
) -> HealthWindow:
    """Per-device health of `things` over [start, end) for the named metrics (STATISTIC's keys)."""
    period = period_for(start, end, minimum_period_s)
    window = HealthWindow(start, end, period, {thing: DeviceHealth() for thing in things})
    queries: list[tuple[str, str, dict[str, Any]]] = []
    for index, thing in enumerate(things):
        for metric in metrics:
            query = {
                "Id": f"m{index}_{metric.lower()}",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": f"{metric}/{thing}"},
                    "Period": period,
                    "Stat": STATISTIC[metric],
                },
                "ReturnData": True,
            }
            queries.append((thing, metric, query))
    per_period: dict[str, dict[float, list[float]]] = {m: {} for m in metrics}
    for offset in range(0, len(queries), MAX_QUERIES):
        chunk = queries[offset : offset + MAX_QUERIES]
        by_id = {q["Id"]: (thing, metric) for thing, metric, q in chunk}
        try:
            answer = _get(clients, [q for _, _, q in chunk], start, end)
        except (ClientError, BotoCoreError) as error:
            raise call_failed("cloudwatch GetMetricData", error) from error
        for result in answer:
            thing, metric = by_id[result["Id"]]
            values = [float(v) for v in result.get("Values") or []]
            stamps = [t.timestamp() for t in result.get("Timestamps") or []]
            _fold(window.devices[thing], metric, values)
            for stamp, value in zip(stamps, values, strict=False):
                per_period[metric].setdefault(stamp, []).append(value)
    for metric, points in per_period.items():
        window.series[metric] = [
            (
                stamp,
                sum(vs)
                if STATISTIC[metric] == "Sum"
                else (max(vs) if STATISTIC[metric] == "Maximum" else sum(vs) / len(vs)),
            )
            for stamp, vs in sorted(points.items())
        ]
    return window


def _get(clients: Clients, queries: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        answer = clients.cloudwatch.get_metric_data(
            MetricDataQueries=queries,
            StartTime=datetime.fromtimestamp(start, UTC),
            EndTime=datetime.fromtimestamp(max(end, start + 1), UTC),
            ScanBy="TimestampAscending",
            **({"NextToken": token} if token else {}),
        )
        results.extend(answer.get("MetricDataResults") or [])
        token = answer.get("NextToken")
        if not token:
            return results


def _fold(device: DeviceHealth, metric: str, values: list[float]) -> None:
    if not values:
        return
    if metric == "Requests":
        device.requests = sum(values)
    elif metric == "Errors":
        device.errors = sum(values)
    elif metric == "LatencyP99":
        device.latency_p99_ms = max(values)
    elif metric == "MeanConfidence":
        device.mean_confidence = sum(values) / len(values)
    else:
        device.drift_psi = max(values + ([device.drift_psi] if device.drift_psi is not None else []))
