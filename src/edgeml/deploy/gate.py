"""A ring's health gate: what the devices show after the deployment, never the deployment's own status.

A thing-group deployment stays ACTIVE while devices fail (aws-cli #6185), and a nucleus reports SUCCEEDED
once a component has started even if it crashes a second later (semantics notes fact 10). So per device:
its effective deployment for our deployment id (ListEffectiveDeployments: SUCCEEDED for a thing group,
COMPLETED for a thing), its installed components (ListInstalledComponents: the spec's versions, none
BROKEN), whether the core device is UNHEALTHY (ListCoreDevices status filter), and the app's health
records over the soak from CloudWatch (`metrics.read_health`). A device whose execution is still QUEUED or
IN_PROGRESS when the ring's settle time is over counts as TIMED_OUT.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from edgeml.deploy.aws import Clients, call_failed, error_code, pages
from edgeml.deploy.metrics import HealthWindow, read_health
from edgeml.deploy.spec import Gate, RolloutSpec

SUCCESS = ("SUCCEEDED", "COMPLETED")
PENDING = ("QUEUED", "IN_PROGRESS")
READERS = 8


@dataclass
class DeviceState:
    thing: str
    status: str  # effective deployment status of our deployment (or NOT_RECEIVED, TIMED_OUT)
    reason: str = ""
    versions: dict[str, str] = field(default_factory=dict)  # our components as installed
    broken: list[str] = field(default_factory=list)
    unhealthy: bool = False

    def runs(self, wanted: dict[str, str]) -> bool:
        return all(self.versions.get(n) == v for n, v in wanted.items())


@dataclass
class Check:
    metric: str
    threshold: float
    observed: float | None
    passed: bool
    devices: list[str] = field(default_factory=list)  # the devices that failed this check
    comparison: str = "<="

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "observed": self.observed,
            "passed": self.passed,
            "failingDevices": self.devices,
        }

    def line(self) -> str:
        shown = "no data" if self.observed is None else f"{self.observed:.4g}"
        names = ", ".join(self.devices[:5]) + (
            f" and {len(self.devices) - 5} more" if len(self.devices) > 5 else ""
        )
        threshold = f"{self.comparison} {self.threshold:g}"
        return f"{self.metric} {shown} (threshold {threshold}); devices: {names or 'none'}"


@dataclass
class GateResult:
    ring: str
    checks: list[Check]
    devices: list[DeviceState]
    health: HealthWindow | None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def _device_state(clients: Clients, thing: str, deployment_id: str, wanted: dict[str, str]) -> DeviceState:
    gg = clients.greengrass
    try:
        effective = list(
            pages(gg.list_effective_deployments, "effectiveDeployments", coreDeviceThingName=thing)
        )
        installed = list(
            pages(
                gg.list_installed_components,
                "installedComponents",
                coreDeviceThingName=thing,
                topologyFilter="ALL",
            )
        )
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":  # never reported: took nothing yet
            return DeviceState(thing, "NOT_RECEIVED")
        raise call_failed(f"greengrassv2 device state of {thing}", error) from error
    ours = next((e for e in effective if e.get("deploymentId") == deployment_id), None)
    state = DeviceState(
        thing,
        str(ours["coreDeviceExecutionStatus"]) if ours else "NOT_RECEIVED",
        str((ours or {}).get("reason") or ""),
    )
    for component in installed:
        name = component.get("componentName")
        if name in wanted:
            state.versions[name] = str(component.get("componentVersion"))
            if component.get("lifecycleState") == "BROKEN":
                state.broken.append(name)
    return state


def device_states(
    clients: Clients, things: Sequence[str], deployment_id: str, wanted: dict[str, str]
) -> list[DeviceState]:
    if READERS <= 1:
        states = [_device_state(clients, t, deployment_id, wanted) for t in things]
    else:  # per-device reads overlap their round trips (AWS); boto3 clients are thread-safe
        with ThreadPoolExecutor(READERS) as pool:
            states = list(pool.map(lambda t: _device_state(clients, t, deployment_id, wanted), things))
    unhealthy = set(
        d["coreDeviceThingName"]
        for d in pages(clients.greengrass.list_core_devices, "coreDevices", status="UNHEALTHY")
    )
    for state in states:
        state.unhealthy = state.thing in unhealthy
    return states


def _share_check(
    name: str, threshold: float, devices: list[DeviceState], bad: list[str], at_least: bool
) -> Check:
    total = max(len(devices), 1)
    if at_least:
        share = (len(devices) - len(bad)) / total
        return Check(name, threshold, share, share >= threshold - 1e-12, bad, ">=")
    share = len(bad) / total
    return Check(name, threshold, share, share <= threshold + 1e-12, bad, "<=")


def evaluate(
    clients: Clients,
    spec: RolloutSpec,
    gate: Gate,
    ring: str,
    things: Sequence[str],
    deployment_id: str,
    soak: tuple[float, float],
    settled: bool,
) -> GateResult:
    """Reads the ring's devices and health and applies the gate."""
    wanted = {c.name: c.version for c in spec.components}
    states = device_states(clients, things, deployment_id, wanted)
    if settled:
        for state in states:
            if state.status in PENDING or state.status == "NOT_RECEIVED":
                state.reason = f"still {state.status} when the ring's settle time was over"
                state.status = "TIMED_OUT"
    not_done = [s.thing for s in states if not (s.status in SUCCESS and s.runs(wanted))]
    checks = [
        _share_check("succeeded", gate.min_succeeded, states, not_done, at_least=True),
        _share_check(
            "broken", gate.max_broken, states, [s.thing for s in states if s.broken], at_least=False
        ),
        _share_check(
            "unhealthy", gate.max_unhealthy, states, [s.thing for s in states if s.unhealthy], False
        ),
    ]
    health: HealthWindow | None = None
    if gate.reads_health_records:
        runners = [s.thing for s in states if s.status in SUCCESS and s.runs(wanted)]
        metrics = _metrics_for(gate)
        health = read_health(
            clients, spec.metric_namespace, runners, metrics, soak[0], soak[1], spec.period_s
        )
        checks.extend(_health_checks(gate, health, runners))
    return GateResult(ring, checks, states, health)


def _metrics_for(gate: Gate) -> list[str]:
    metrics = ["Requests"]
    if gate.max_error_rate is not None:
        metrics.append("Errors")
    if gate.max_latency_p99_ms is not None:
        metrics.append("LatencyP99")
    if gate.min_mean_confidence is not None:
        metrics.append("MeanConfidence")
    if gate.max_drift_psi is not None:
        metrics.extend(["ClassPsi", "ConfidencePsi"])
    return metrics


def _health_checks(gate: Gate, health: HealthWindow, runners: list[str]) -> list[Check]:
    total = max(len(runners), 1)
    devices = health.devices
    checks: list[Check] = []

    def add(
        name: str, threshold: float | None, value_of: Any, higher_is_bad: bool, ring_value: float | None
    ) -> None:
        if threshold is None:
            return
        bad = []
        for thing in runners:
            value = value_of(devices[thing])
            # A device with no datapoint for a gated metric fails the check: silence (no health record
            # reached CloudWatch over the soak) must never promote a ring.
            if value is None or ((value > threshold) if higher_is_bad else (value < threshold)):
                bad.append(thing)
        passed = len(bad) / total <= gate.max_failing_devices + 1e-12
        checks.append(Check(name, threshold, ring_value, passed, bad, "<=" if higher_is_bad else ">="))

    requests = sum(d.requests for d in devices.values())
    errors = sum(d.errors for d in devices.values())
    add(
        "errorRate",
        gate.max_error_rate,
        lambda d: d.error_rate,
        True,
        errors / requests if requests else None,
    )
    latencies = [d.latency_p99_ms for d in devices.values() if d.latency_p99_ms is not None]
    add(
        "latencyP99Ms",
        gate.max_latency_p99_ms,
        lambda d: d.latency_p99_ms,
        True,
        max(latencies, default=None),
    )
    confidences = [d.mean_confidence for d in devices.values() if d.mean_confidence is not None]
    add(
        "meanConfidence",
        gate.min_mean_confidence,
        lambda d: d.mean_confidence,
        False,
        sum(confidences) / len(confidences) if confidences else None,
    )
    psis = [d.drift_psi for d in devices.values() if d.drift_psi is not None]
    add("driftPsi", gate.max_drift_psi, lambda d: d.drift_psi, True, max(psis, default=None))
    if gate.min_results_per_device is not None:
        few = [t for t in runners if devices[t].requests < gate.min_results_per_device]
        fewest = min((devices[t].requests for t in runners), default=None)
        passed = len(few) / total <= gate.max_failing_devices + 1e-12
        checks.append(
            Check("resultsPerDevice", float(gate.min_results_per_device), fewest, passed, few, ">=")
        )
    return checks
