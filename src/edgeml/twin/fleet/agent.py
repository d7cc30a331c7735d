"""One light device: takes deployments and reports as a nucleus does, without running any component.

Through the device-facing APIs only: iot-jobs-data (`StartNextPendingJobExecution`, `UpdateJobExecution`
with the nucleus's statusDetails keys, semantics notes facts 5-7), greengrassv2 `ResolveComponentCandidates`
for the deployment's roots (a refusal fails it with no state change, NUC DependencyResolver), iot-data
Publish of the fleet status
(`$aws/things/{thing}/greengrassv2/health/json`, NUC FleetStatusService: COMPLETE message, UNHEALTHY iff a
component is BROKEN) and of the app's health records (`edgeml/{thing}/inference/health`, the fields of
edgeml_inference/health.py). A group's root components are replaced only when its deployment succeeds
(fact 1); a deployment older than the last one taken for its group is REJECTED (fact 19).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgeml.twin.fleet.behaviour import FleetBehaviour

FLEET_STATUS_TOPIC = "$aws/things/{thing}/greengrassv2/health/json"
HEALTH_TOPIC = "edgeml/{thing}/inference/health"  # edgeml.config.healthrule.HEALTH_TOPIC
NUCLEUS_VERSION = "2.14.0"


class DeviceApi(Protocol):
    """The device-facing calls (boto3 clients of iot-jobs-data and iot-data do exactly this)."""

    def start_next(self, thing: str) -> dict[str, Any]: ...

    def update(self, thing: str, job_id: str, status: str, details: dict[str, str]) -> bool: ...

    def publish(self, topic: str, payload: bytes) -> None: ...

    def resolve(self, group: str, components: dict[str, str]) -> str | None:
        """ResolveComponentCandidates for the roots (`=version` each); the service's refusal, or None."""
        ...


@dataclass
class Pending:
    job_id: str
    document: dict[str, Any]
    outcome: str
    report_at: float


@dataclass
class LightAgent:
    thing: str
    behaviour: FleetBehaviour
    roots: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # group -> name -> entry
    last_created: dict[str, int] = field(default_factory=dict)  # group -> creationTimestamp taken
    broken: set[str] = field(default_factory=set)
    pending: Pending | None = None
    silent: bool = False
    next_health_at: float = 0.0
    sequence: int = 0

    # --- what the device runs ----------------------------------------------------------------
    def installed(self) -> dict[str, dict[str, str]]:
        merged: dict[str, dict[str, str]] = {}
        for group in sorted(self.roots):
            merged.update(self.roots[group])
        return merged

    def watched_version(self) -> str | None:
        entry = self.installed().get(self.behaviour.watched_component)
        return entry["version"] if entry else None

    # --- deployments -------------------------------------------------------------------------
    def take(self, api: DeviceApi, now: float) -> bool:
        """Takes the next pending job (IN_PROGRESS); returns whether there was one."""
        if self.silent or self.pending is not None:
            return False
        answer = api.start_next(self.thing).get("execution")
        if not answer:
            return False
        document = json.loads(answer["jobDocument"]) if answer.get("jobDocument") else {}
        group = _group_key(document)
        created = int(document.get("creationTimestamp") or 0)
        if created < self.last_created.get(group, 0):
            stale = "REJECTED"
            self.pending = Pending(answer["jobId"], document, stale, now)
            return True
        roots = {name: str(spec.get("version")) for name, spec in (document.get("components") or {}).items()}
        refused = api.resolve(group, roots)
        if refused is not None:  # NUC DependencyResolver: fails before anything changes on the device
            self.pending = Pending(answer["jobId"], {**document, "refusal": refused}, "unresolved", now)
            return True
        # keyed by the configuration ARN (group + revision), not the random deployment id: reproducible runs
        outcome = self.behaviour.draw(self.thing, str(document.get("configurationArn", "")))
        wanted = (document.get("components") or {}).get(self.behaviour.watched_component) or {}
        health = self.behaviour.health_of(wanted.get("version"))
        if outcome == "ok" and health.fails_deployment:
            outcome = "fail"
        if outcome == "ok" and health.crash_after_start:
            outcome = "crash"
        delay = self.behaviour.apply_seconds * (1.0 + random.Random(f"{self.thing}:{created}").random())
        if outcome == "timeout":
            delay = 7 * 24 * 3600.0
        self.pending = Pending(answer["jobId"], document, outcome, now + delay)
        if outcome == "silent":
            self.silent = True
        return True

    def step(self, api: DeviceApi, now: float) -> None:
        if self.silent:
            return
        if self.pending is not None and now >= self.pending.report_at:
            self._finish(api, self.pending, now)
            self.pending = None
        if now >= self.next_health_at and self.installed():
            self.next_health_at = now + self.behaviour.health_interval_s
            self._publish_health(api, now)

    def _finish(self, api: DeviceApi, pending: Pending, now: float) -> None:
        document = pending.document
        group = _group_key(document)
        components = {
            name: {"version": str(spec.get("version")), "configurationArn": str(document["configurationArn"])}
            for name, spec in (document.get("components") or {}).items()
        }
        watched = self.behaviour.watched_component
        if pending.outcome == "REJECTED":
            api.update(self.thing, pending.job_id, "REJECTED", _rejected(group, document))
            return
        self.last_created[group] = int(document.get("creationTimestamp") or 0)
        if pending.outcome == "unresolved":
            api.update(self.thing, pending.job_id, "FAILED", _unresolved(str(document["refusal"])))
            self._publish_status(api, now, document, "FAILED")
            return
        if pending.outcome == "fail":
            api.update(self.thing, pending.job_id, "FAILED", _failed(watched))
            self._publish_status(api, now, document, "FAILED")
            return
        api.update(self.thing, pending.job_id, "SUCCEEDED", {"detailed-deployment-status": "SUCCESSFUL"})
        self.roots[group] = components
        self.broken = {watched} if pending.outcome == "crash" and watched in components else set()
        self.next_health_at = now + self.behaviour.health_interval_s
        self._publish_status(api, now, document, "SUCCEEDED")

    # --- what the device publishes -----------------------------------------------------------
    def _publish_status(self, api: DeviceApi, now: float, document: dict[str, Any], status: str) -> None:
        self.sequence += 1
        components = []
        for name, entry in sorted(self.installed().items()):
            state = "BROKEN" if name in self.broken else "RUNNING"
            components.append(
                {
                    "componentName": name,
                    "version": entry["version"],
                    "fleetConfigArns": [entry["configurationArn"]],
                    "status": state,
                    "isRoot": True,
                    "componentStatusDetails": {"statusCodes": ["RUN_ERROR"]} if state == "BROKEN" else {},
                }
            )
        message = {
            "ggcVersion": NUCLEUS_VERSION,
            "platform": "linux",
            "architecture": "amd64",
            "runtime": "aws_nucleus_classic",
            "thing": self.thing,
            "overallDeviceStatus": "UNHEALTHY" if self.broken else "HEALTHY",
            "sequenceNumber": self.sequence,
            "timestamp": int(now * 1000),
            "messageType": "COMPLETE",
            "components": components,
            "deploymentInformation": {
                "status": status,
                "fleetConfigurationArnForStatus": document.get("configurationArn"),
            },
        }
        api.publish(FLEET_STATUS_TOPIC.format(thing=self.thing), json.dumps(message).encode())

    def _publish_health(self, api: DeviceApi, now: float) -> None:
        version = self.watched_version()
        if self.behaviour.watched_component in self.broken:
            return  # a crash-looping app publishes nothing
        health = self.behaviour.health_of(version)
        if not health.publishes_health:
            return
        noise = random.Random(f"{self.thing}:{now}")
        requests = health.requests_per_record
        errors = min(requests, round(requests * health.error_rate))
        answered = requests - errors
        record = {
            "kind": "health",
            "device": self.thing,
            "timestamp": round(now, 3),
            "window_s": self.behaviour.health_interval_s,
            "requests": requests,
            "errors": errors,
            "latency_ms": {
                "p50": round(health.latency_p99_ms * 0.5, 3),
                "p95": round(health.latency_p99_ms * 0.8, 3),
                "p99": round(health.latency_p99_ms * (0.9 + 0.2 * noise.random()), 3),
            },
            "mean_confidence": round(max(0.0, health.mean_confidence - 0.02 * noise.random()), 4)
            if answered
            else None,
            "drift": {"class_psi": round(health.drift_psi, 6), "confidence_psi": round(health.drift_psi, 6)}
            if answered
            else {"class_psi": None, "confidence_psi": None},
            "model": {"name": self.behaviour.watched_component, "version": version},
        }
        api.publish(HEALTH_TOPIC.format(thing=self.thing), json.dumps(record).encode())


def _group_key(document: dict[str, Any]) -> str:
    """The nucleus's group name: the configuration ARN's resource (`thinggroup/<name>`) less the revision."""
    arn = str(document.get("configurationArn") or "")
    resource = arn.split(":configuration:", 1)[-1]
    return resource.rsplit(":", 1)[0]


def _failed(component: str) -> dict[str, str]:
    """What a nucleus reports when a component goes BROKEN during the deployment and ROLLBACK restores."""
    return {
        "detailed-deployment-status": "FAILED_ROLLBACK_COMPLETE",
        "deployment-failure-cause": f"Service {component} in broken state after deployment",
        "deployment-error-stack": json.dumps(
            ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"]
        ),
        "deployment-error-types": json.dumps(["USER_COMPONENT_ERROR"]),
    }


def _unresolved(message: str) -> dict[str, str]:
    return {
        "detailed-deployment-status": "FAILED_NO_STATE_CHANGE",
        "deployment-failure-cause": message[:1024],
        "deployment-error-stack": json.dumps(
            ["DEPLOYMENT_FAILURE", "NO_AVAILABLE_COMPONENT_VERSION", "COMPONENT_VERSION_REQUIREMENTS_NOT_MET"]
        ),
        "deployment-error-types": json.dumps(["REQUEST_ERROR"]),
    }


def _rejected(group: str, document: dict[str, Any]) -> dict[str, str]:
    return {
        "detailed-deployment-status": "REJECTED",
        "deployment-failure-cause": f"Nucleus has a newer deployment for '{group}' target. Rejecting the "
        f"deployment from '{document.get('configurationArn')}'",
        "deployment-error-stack": json.dumps(["DEPLOYMENT_REJECTED", "REJECTED_STALE_DEPLOYMENT"]),
        "deployment-error-types": json.dumps(["REQUEST_ERROR"]),
    }
