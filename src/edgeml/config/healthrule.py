"""The health topic rules, written once: the CDK health stack deploys them; a cloud twin can execute them.

The inference app publishes each health record (edgeml_inference/app.py `publish_health`, fields from
edgeml_inference/health.py `HealthMonitor.snapshot`) to AWS IoT Core on `edgeml/<thing>/inference/health`.
One rule per metric puts two CloudWatch datapoints of the record's field: the fleet metric `<Metric>`
(what the alarms watch) and the per-device metric `<Metric>/<thing>` (what a rollout gate reads for
the devices of a ring), the thing name being topic(2) (the core device's IoT policy lets a device publish
only under its own name, so it cannot be forged). The actions' substitution templates name the field
and topic(2) themselves: they are evaluated against the original payload and cannot see SELECT's AS
aliases (IoT DG iot-substitution-templates); the SELECT list only documents what a rule reads.
The IoT CloudWatch metric action has no dimensions (botocore iot `CloudwatchMetricAction`), hence the
name suffix.

`WHERE ... AND <field> >= 0` drops records whose field is null (no request in the window, no baseline for
drift): an IoT SQL comparison with Null is Undefined, which WHERE treats as false. `kind = 'health'`
drops the app's event records, which share the topic.
"""

from __future__ import annotations

from dataclasses import dataclass

SQL_VERSION = "2016-03-23"
# The app's IoT Core health topic, {thing} being the core device's thing name.
HEALTH_TOPIC = "edgeml/{thing}/inference/health"
HEALTH_TOPIC_FILTER = "edgeml/+/inference/health"
# The app's IoT Core results topic (the recipe's IoTCoreTopic default).
RESULTS_TOPIC = "edgeml/{thing}/inference/results"
DEVICE_METRIC_SEPARATOR = "/"


@dataclass(frozen=True)
class HealthMetric:
    """One CloudWatch metric taken from one field of the health record."""

    name: str  # CloudWatch metric name (fleet); per device: name + "/" + thing
    field: str  # path in the health record, IoT SQL dotted form
    unit: str  # CloudWatch unit

    @property
    def rule_suffix(self) -> str:
        return "".join("_" + c.lower() if c.isupper() else c for c in self.name).lstrip("_")

    def device_metric(self, thing: str) -> str:
        return f"{self.name}{DEVICE_METRIC_SEPARATOR}{thing}"


HEALTH_METRICS: tuple[HealthMetric, ...] = (
    HealthMetric("Requests", "requests", "Count"),
    HealthMetric("Errors", "errors", "Count"),
    HealthMetric("LatencyP99", "latency_ms.p99", "Milliseconds"),
    HealthMetric("MeanConfidence", "mean_confidence", "None"),
    HealthMetric("ClassPsi", "drift.class_psi", "None"),
    HealthMetric("ConfidencePsi", "drift.confidence_psi", "None"),
)


@dataclass(frozen=True)
class MetricAction:
    """An IoT `cloudwatchMetric` action; the strings are IoT substitution templates."""

    metric_namespace: str
    metric_name: str
    metric_value: str
    metric_unit: str


@dataclass(frozen=True)
class HealthRule:
    """One topic rule: its name, SQL and CloudWatch metric actions (the error action is the stack's)."""

    name: str
    sql: str
    actions: tuple[MetricAction, ...]


def rule_sql(metric: HealthMetric) -> str:
    return (
        f"SELECT {metric.field} AS value, topic(2) AS thing FROM '{HEALTH_TOPIC_FILTER}' "
        f"WHERE kind = 'health' AND {metric.field} >= 0"
    )


def health_rules(rule_prefix: str, namespace: str, per_device: bool = True) -> tuple[HealthRule, ...]:
    """The rules for a deployment: names `<rule_prefix>_<metric>`, metrics in `namespace`."""
    rules = []
    for metric in HEALTH_METRICS:
        # Substitution templates are evaluated against the original payload, never SELECT's AS aliases
        # (IOTDG iot-substitution-templates), hence the field and topic(2) here rather than value/thing.
        value = "${" + metric.field + "}"
        actions = [MetricAction(namespace, metric.name, value, metric.unit)]
        if per_device:
            actions.append(MetricAction(namespace, metric.device_metric("${topic(2)}"), value, metric.unit))
        rules.append(HealthRule(f"{rule_prefix}_{metric.rule_suffix}", rule_sql(metric), tuple(actions)))
    return tuple(rules)
