"""The demo's model update as a staged rollout: `edgeml deploy start`'s code path (spec file, plan,
orchestrator, JSON + HTML reports) with two rings, each an existing thing group of device twins; the
canary ring soaks and is gated, the last ring is deployed once the canary's gate passed.

The canary's gate reads the device states (each device's effective deployment, its installed versions,
BROKEN components, UNHEALTHY core devices). The app's health records do reach CloudWatch through the
health rules (the demo counts their datapoints), but no input arrives during the canary's soak here, and a
metric gate fails a device with no requests in its window ("no data" is never a pass), so the demo's gate
stays on device state; docs/rollouts.md shows metric gates on a fleet that is serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import yaml

from edgeml.deploy.aws import Clients
from edgeml.deploy.clock import WallClock
from edgeml.deploy.errors import GateFailed
from edgeml.deploy.orchestrator import Event, Orchestrator, RunRecord
from edgeml.deploy.plan import check_and_plan
from edgeml.deploy.report import write_reports
from edgeml.deploy.spec import load_spec
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS

CANARY_SOAK_S = 4.0
POLL_S = 0.5
SETTLE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class RingGroup:
    name: str
    thing_group: str
    gated: bool


@dataclass
class RolloutOutcome:
    outcome: str  # completed, rolled-back, ...
    failure: str
    rings: list[dict[str, Any]]
    reports: tuple[Path, Path]
    spec: Path


def rollout_spec(name: str, components: dict[str, str], rings: list[RingGroup]) -> dict[str, Any]:
    """The rollout spec a user would write for `edgeml deploy start`."""
    return {
        "name": name,
        "components": {component: {"version": version} for component, version in components.items()},
        "deploymentPolicies": {"failureHandlingPolicy": "ROLLBACK"},
        "pollSeconds": POLL_S,
        "rings": [
            {
                "name": ring.name,
                "thingGroup": ring.thing_group,
                "soakSeconds": CANARY_SOAK_S if ring.gated else 0,
                "settleTimeoutSeconds": SETTLE_TIMEOUT_S,
                **(
                    {"gate": {"minSucceeded": 1.0, "maxBroken": 0.0, "maxUnhealthy": 0.0}}
                    if ring.gated
                    else {}
                ),
            }
            for ring in rings
        ],
    }


def _ring_rows(record: RunRecord) -> list[dict[str, Any]]:
    rows = []
    for ring in record.spec.rings:
        ring_plan = next((p for p in record.plan.rings if p.name == ring.name), None) if record.plan else None
        gate = record.gates.get(ring.name)
        rows.append(
            {
                "ring": ring.name,
                "thing group": ring.target_group,
                "devices": list(ring_plan.devices) if ring_plan else [],
                "soak s": ring.soak_s,
                "gate": (
                    {check.metric: {"observed": check.observed, "threshold": check.threshold,
                                    "passed": check.passed} for check in gate.checks}
                    if gate is not None else {}
                ),
                "gate passed": None if gate is None else gate.passed,
                "events": [event.what for event in record.events if event.ring == ring.name],
            }
        )
    return rows


def run_rollout(
    work: Path, name: str, components: dict[str, str], rings: list[RingGroup], on_event: Callable[[str], None]
) -> RolloutOutcome:
    """Writes the spec, plans, runs the rollout to its end; a failed gate is an outcome, not an error."""
    spec_path = work / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(rollout_spec(name, components, rings), sort_keys=False), "utf-8")
    spec = load_spec(spec_path)
    clients = Clients(TWIN_CREDENTIALS["AWS_DEFAULT_REGION"])
    plan, _ = check_and_plan(clients, spec)
    for ring_plan in plan.rings:
        changes = ", ".join(f"{n} {b or '(none)'} -> {a}" for n, (b, a) in ring_plan.changes.items())
        on_event(f"plan: ring {ring_plan.name} ({', '.join(ring_plan.devices)}): {changes}")

    def event(happened: Event) -> None:
        on_event(f"{happened.ring or 'rollout'}: {happened.what}")

    started = time.time()
    orchestrator = Orchestrator(clients, spec, WallClock(), on_event=event)
    try:
        record = orchestrator.run()
    except GateFailed:
        record = orchestrator.record
        record.outcome = "rolled-back"
    reports = write_reports(record, work / "rollout-reports", started)
    return RolloutOutcome(record.outcome, record.failure, _ring_rows(record), reports, spec_path)


def health_datapoints(namespace: str, things: list[str]) -> int:
    """CloudWatch health metrics per device that the health rules would have put (any metric name ending
    in /<thing>) in `namespace`: how many there are."""
    cloudwatch = boto3.client("cloudwatch")
    metrics = cloudwatch.list_metrics(Namespace=namespace).get("Metrics", [])
    return sum(1 for metric in metrics if any(metric["MetricName"].endswith(f"/{t}") for t in things))
