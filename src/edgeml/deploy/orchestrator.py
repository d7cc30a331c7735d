"""The rollout, ring by ring: deploy, follow, soak, gate, promote, or roll back every touched ring.

Rings are thing groups, and each ring has its own continuous deployment (one per target: semantics notes
§2.2). A share ring's group is made by the rollout and filled with the devices `rings.assign` gives it.
Every step is decided from what AWS holds (`state.read_state`), so `run` is both `start` and `resume`:
killed at any point, the next run finds the deployments it made by their tags, creates only what is
missing (with the same client token) and goes on where the ring stood (settled-at tag = soak start).

A failed gate (or a ring stopped by its IoT job abort criteria) halts the rollout and redeploys the
previous revision's components, configuration and policies to every touched ring (cancel and delete
change nothing on devices: DG cancel-deployments); later rings are never deployed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from edgeml.deploy.aws import Clients, call_failed, error_code, pages
from edgeml.deploy.clock import Waiter
from edgeml.deploy.errors import GateFailed, RolloutStateError
from edgeml.deploy.gate import Check, GateResult, evaluate
from edgeml.deploy.plan import RING_ATTRIBUTE, Plan, RingPlan, check_and_plan
from edgeml.deploy.spec import Ring, RolloutSpec
from edgeml.deploy.state import (
    GATE_FAILED,
    GATE_PASSED,
    GATE_PROMOTED,
    GATE_WAITING,
    KIND_ROLLBACK,
    KIND_ROLLOUT,
    STATE_CANCELED,
    TAG_GATE,
    TAG_SETTLED,
    TAG_STATE,
    RingState,
    RolloutState,
    client_token,
    deployment_tags,
    read_state,
    set_tags,
)

TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "REMOVED", "CANCELED")


@dataclass
class Event:
    at: float
    ring: str
    what: str

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "ring": self.ring, "event": self.what}


@dataclass
class RunRecord:
    """What one run saw: the report is written from it."""

    spec: RolloutSpec
    plan: Plan | None = None
    events: list[Event] = field(default_factory=list)
    progress: dict[str, list[tuple[float, dict[str, int]]]] = field(default_factory=dict)
    gates: dict[str, GateResult] = field(default_factory=dict)
    outcome: str = ""
    failure: str = ""
    rolled_back: list[str] = field(default_factory=list)
    rollbacks: dict[str, dict[str, int]] = field(default_factory=dict)  # ring -> rollback executions


ProgressCallback = Callable[[str, dict[str, int], int], None]


def _quiet(ring: str, counts: dict[str, int], total: int) -> None:
    return None


class Orchestrator:
    def __init__(
        self,
        clients: Clients,
        spec: RolloutSpec,
        waiter: Waiter,
        on_progress: ProgressCallback = _quiet,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.clients = clients
        self.spec = spec
        self.waiter = waiter
        self.on_progress = on_progress
        self.on_event = on_event
        self.record = RunRecord(spec)

    # --- bookkeeping ------------------------------------------------------------------------------
    def _event(self, ring: str, what: str) -> None:
        event = Event(self.waiter.now(), ring, what)
        self.record.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _aws(self, what: str, call: Callable[..., Any], **arguments: Any) -> Any:
        try:
            return call(**arguments)
        except (ClientError, BotoCoreError) as error:
            raise call_failed(what, error) from error

    # --- the run ----------------------------------------------------------------------------------
    def run(self) -> RunRecord:
        """Starts or resumes the rollout; returns when it completed, waits for a promotion, or was canceled.

        Raises GateFailed after rolling back when a gate fails."""
        plan, state = check_and_plan(self.clients, self.spec)
        self.record.plan = plan
        rings = {r.name: r for r in plan.rings}
        phase = state.phase
        if phase in ("rolled-back", "rolling-back"):
            self._rollback(state, "the rollout was rolled back")
            self.record.outcome = "rolled-back"
            return self.record
        if phase == "canceled":
            self.record.outcome = "canceled"
            return self.record
        for ring_state in state.rings:
            if ring_state.promoted:
                continue
            outcome = self._ring(ring_state, rings[ring_state.ring.name], state)
            if outcome != "promoted":
                self.record.outcome = outcome
                return self.record
        self.record.outcome = "completed"
        self._event("", "rollout completed")
        return self.record

    def _ring(self, ring_state: RingState, ring_plan: RingPlan, state: RolloutState) -> str:
        ring = ring_state.ring
        if ring_state.ours is None:
            self._sync_members(ring, ring_plan)
            ring_state.ours = self._create(ring, ring_state, ring_plan)
            self._event(ring.name, f"deployment {ring_state.ours['deploymentId']} created")
        elif ring_state.gate == GATE_WAITING:
            return "awaiting-promotion"
        deployment = ring_state.ours
        total = len(ring_plan.devices)
        created = _epoch(deployment["creationTimestamp"])
        settled_at = ring_state.settled_at
        aborted = False
        while settled_at is None:
            stop = self._refresh(deployment)  # before the job: a cancel by hand tags first, then cancels
            if stop:
                return self._stopped(ring, deployment, stop)
            counts, job_status = self._counts(deployment)
            self.record.progress.setdefault(ring.name, []).append((self.waiter.now(), counts))
            self.on_progress(ring.name, counts, total)
            done = sum(counts.get(s, 0) for s in TERMINAL)
            aborted = job_status == "CANCELED"
            if done >= total or aborted or self.waiter.now() >= created + ring.settle_timeout_s:
                settled_at = self.waiter.now()
                set_tags(self.clients, deployment, {TAG_SETTLED: f"{settled_at:.3f}"})
                self._event(ring.name, "aborted by its job's abort criteria" if aborted else "settled")
                break
            self.waiter.sleep(self.spec.poll_s)
        soak_end = settled_at + ring.soak_s
        if not aborted and ring_state.settled_at is not None:  # resumed after the ring had settled
            stop = self._refresh(deployment)
            if stop in ("canceled", "superseded"):
                return self._stopped(ring, deployment, stop)
            aborted = self._job_status(deployment) == "CANCELED"
        while not aborted and self.waiter.now() < soak_end:
            stop = self._refresh(deployment)
            if stop == "promoted":
                self._event(ring.name, "promoted by hand during the soak")
                return "promoted"
            if stop:
                return self._stopped(ring, deployment, stop)
            self.waiter.sleep(min(self.spec.poll_s, max(soak_end - self.waiter.now(), 0.001)))
        result = evaluate(
            self.clients,
            self.spec,
            ring.gate,
            ring.name,
            ring_plan.devices,
            deployment["deploymentId"],
            (settled_at, max(soak_end, settled_at + 1)),
            settled=True,
        )
        if aborted:
            result.checks.insert(0, Check("jobAborted", 0, 1, False, [], "abort criteria of"))
        self.record.gates[ring.name] = result
        if not result.passed:
            set_tags(self.clients, deployment, {TAG_GATE: GATE_FAILED})
            first = result.failed[0]
            self._event(ring.name, f"gate failed: {first.line()}")
            fresh = read_state(self.clients, self.spec)
            self._rollback(fresh, f"ring {ring.name}: gate failed: {first.line()}")
            raise GateFailed(
                f"rollout {self.spec.name} stopped at ring {ring.name}: "
                + "; ".join(c.line() for c in result.failed)
                + f"; rolled back: {', '.join(self.record.rolled_back) or 'nothing'}"
            )
        if ring.manual_promotion and deployment["tags"].get(TAG_GATE) != GATE_PROMOTED:
            set_tags(self.clients, deployment, {TAG_GATE: GATE_WAITING})
            self._event(ring.name, "gate passed; waiting for `edgeml deploy promote`")
            return "awaiting-promotion"
        set_tags(self.clients, deployment, {TAG_GATE: GATE_PASSED})
        self._event(ring.name, "gate passed; promoted")
        return "promoted"

    def _stopped(self, ring: Ring, deployment: dict[str, Any], why: str = "canceled") -> str:
        self._event(ring.name, why)
        return why

    def _refresh(self, deployment: dict[str, Any]) -> str:
        """Re-reads our deployment's tags: '' to go on, 'canceled' or 'promoted' when told so from outside."""
        fresh = self._aws(
            "greengrassv2 GetDeployment",
            lambda: self.clients.greengrass.get_deployment(deploymentId=deployment["deploymentId"]),
        )
        deployment["tags"] = fresh.get("tags") or {}
        if deployment["tags"].get(TAG_STATE) == STATE_CANCELED:
            return "canceled"
        if fresh.get("isLatestForTarget") is False:  # a rollback by hand or another deployment replaced it
            return "superseded"
        if deployment["tags"].get(TAG_GATE) == GATE_PROMOTED:
            return "promoted"
        return ""

    # --- AWS steps --------------------------------------------------------------------------------
    def _sync_members(self, ring: Ring, plan: RingPlan) -> None:
        if ring.parent_group is None:
            return
        iot = self.clients.iot
        group = ring.target_group
        try:
            iot.create_thing_group(  # a child of the parent, as the CDK stack lays out its ring groups
                thingGroupName=group,
                parentGroupName=ring.parent_group,
                thingGroupProperties={
                    "thingGroupDescription": f"edgeml ring {ring.name}: {ring.share:g} of "
                    f"{ring.parent_group}",
                    "attributePayload": {"attributes": {RING_ATTRIBUTE: ring.parent_group}},
                },
            )
        except ClientError as error:
            if error_code(error) != "ResourceAlreadyExistsException":
                raise call_failed(f"iot CreateThingGroup {group}", error) from error
        for thing in plan.to_add:
            self._aws(
                f"iot AddThingToThingGroup {group}",
                iot.add_thing_to_thing_group,
                thingGroupName=group,
                thingName=thing,
            )
        for thing in plan.to_remove:
            self._aws(
                f"iot RemoveThingFromThingGroup {group}",
                iot.remove_thing_from_thing_group,
                thingGroupName=group,
                thingName=thing,
            )

    def _create(self, ring: Ring, ring_state: RingState, plan: RingPlan) -> dict[str, Any]:
        kept = {
            name: {k: v for k, v in entry.items() if k != "configurationUpdate"}
            for name, entry in ((ring_state.previous or {}).get("components") or {}).items()
        }
        arguments: dict[str, Any] = {
            "targetArn": self.clients.thing_group_arn(ring.target_group),
            "deploymentName": f"{self.spec.name}-{ring.name}",
            "components": {**kept, **self.spec.deployment_components()},
            "tags": deployment_tags(self.spec, ring, KIND_ROLLOUT),
            "clientToken": client_token(self.spec, ring, KIND_ROLLOUT),
        }
        if self.spec.deployment_policies:
            arguments["deploymentPolicies"] = self.spec.deployment_policies
        if ring.job_configuration:
            arguments["iotJobConfiguration"] = ring.job_configuration
        created = self._aws(
            f"greengrassv2 CreateDeployment ring {ring.name}",
            lambda: self.clients.greengrass.create_deployment(**arguments),
        )
        found: dict[str, Any] = self._aws(
            "greengrassv2 GetDeployment",
            lambda: self.clients.greengrass.get_deployment(deploymentId=created["deploymentId"]),
        )
        return found

    def _job_status(self, deployment: dict[str, Any]) -> str:
        job = self._aws(
            "iot DescribeJob", lambda: self.clients.iot.describe_job(jobId=deployment["iotJobId"])
        )
        return str(job["job"]["status"])

    def _counts(self, deployment: dict[str, Any]) -> tuple[dict[str, int], str]:
        """Job executions by status (the live view), and the job's status."""
        status = self._job_status(deployment)
        executions = self._aws(
            "iot ListJobExecutionsForJob",
            lambda: list(
                pages(
                    self.clients.iot.list_job_executions_for_job,
                    "executionSummaries",
                    jobId=deployment["iotJobId"],
                    maxResults=250,
                )
            ),
        )
        counts = Counter(str(e["jobExecutionSummary"]["status"]) for e in executions)
        return dict(counts), status

    def _rollback(self, state: RolloutState, why: str) -> None:
        """Redeploys the previous revision to every touched ring that has no rollback yet, then follows
        the rollbacks until every device of those rings has finished one (or the ring's settle time)."""
        following: list[tuple[Ring, str]] = []
        for ring_state in state.touched:
            ring = ring_state.ring
            if ring_state.rollback is not None:
                if ring.name not in self.record.rolled_back:
                    self.record.rolled_back.append(ring.name)
                following.append((ring, str(ring_state.rollback["deploymentId"])))
                continue
            previous = ring_state.previous
            if previous is None:
                assert ring_state.ours is not None
                self._aws(
                    "greengrassv2 CancelDeployment",
                    self.clients.greengrass.cancel_deployment,
                    deploymentId=ring_state.ours["deploymentId"],
                )
                self._event(ring.name, "no previous revision to roll back to: deployment canceled only")
                continue
            arguments: dict[str, Any] = {
                "targetArn": previous["targetArn"],
                "deploymentName": f"{self.spec.name}-{ring.name}-rollback",
                "components": previous.get("components") or {},
                "tags": deployment_tags(self.spec, ring, KIND_ROLLBACK),
                "clientToken": client_token(self.spec, ring, KIND_ROLLBACK),
            }
            for key in ("deploymentPolicies", "iotJobConfiguration"):
                if previous.get(key):
                    arguments[key] = previous[key]
            answer = self._aws(
                f"greengrassv2 CreateDeployment rollback of ring {ring.name}",
                self.clients.greengrass.create_deployment,
                **arguments,
            )
            self.record.rolled_back.append(ring.name)
            following.append((ring, str(answer["deploymentId"])))
            self._event(
                ring.name,
                f"rolled back to revision {previous.get('revisionId')} ({why}): {answer['deploymentId']}",
            )
        self.record.failure = why
        self._follow_rollbacks(following)

    def _follow_rollbacks(self, following: list[tuple[Ring, str]]) -> None:
        sizes = {r.name: len(r.devices) for r in (self.record.plan.rings if self.record.plan else [])}
        pending = {
            ring.name: (
                ring,
                self._aws(
                    "greengrassv2 GetDeployment",
                    self.clients.greengrass.get_deployment,
                    deploymentId=deployment_id,
                ),
            )
            for ring, deployment_id in following
        }
        started = self.waiter.now()
        while pending:
            for name, (ring, deployment) in list(pending.items()):
                counts, _ = self._counts(deployment)
                self.record.progress.setdefault(f"{name} (rollback)", []).append((self.waiter.now(), counts))
                self.on_progress(f"{name} (rollback)", counts, sizes.get(name, 0))
                done = sum(counts.get(s, 0) for s in TERMINAL)
                timed_out = self.waiter.now() >= started + ring.settle_timeout_s
                if done >= sizes.get(name, 0) or timed_out:
                    self.record.rollbacks[name] = counts
                    summary = ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()))
                    self._event(
                        name, f"rollback {'settled' if not timed_out else 'not settled in time'}: {summary}"
                    )
                    del pending[name]
            if pending:
                self.waiter.sleep(self.spec.poll_s)

    # --- commands other than start/resume ------------------------------------------------------------
    def promote(self) -> str:
        state = read_state(self.clients, self.spec)
        active = state.active
        if active is None or active.ours is None or state.phase not in ("in-progress", "awaiting-promotion"):
            raise RolloutStateError(f"rollout {self.spec.name} has no ring to promote ({state.phase})")
        set_tags(self.clients, active.ours, {TAG_GATE: GATE_PROMOTED})
        return active.ring.name

    def cancel(self) -> str:
        state = read_state(self.clients, self.spec)
        active = state.active
        if active is None or active.ours is None or state.phase not in ("in-progress", "awaiting-promotion"):
            raise RolloutStateError(f"rollout {self.spec.name} has nothing to cancel ({state.phase})")
        deployment = active.ours
        set_tags(self.clients, deployment, {TAG_STATE: STATE_CANCELED})  # first: a running rollout reads it
        self._aws(
            "greengrassv2 CancelDeployment",
            lambda: self.clients.greengrass.cancel_deployment(deploymentId=deployment["deploymentId"]),
        )
        return active.ring.name

    def rollback(self) -> list[str]:
        self.record.plan, state = check_and_plan(self.clients, self.spec)  # the rings' devices, to follow
        if not state.touched:
            raise RolloutStateError(f"rollout {self.spec.name} has deployed nothing to roll back")
        self._rollback(state, "rolled back by hand")
        return self.record.rolled_back


def _epoch(value: Any) -> float:
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)
