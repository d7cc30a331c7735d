"""Where a rollout stands, read from AWS only: the tags and revisions of its ring deployments.

The orchestrator keeps nothing that only its process knows. Each ring deployment it creates carries tags:
`edgeml:rollout` (spec name), `edgeml:spec` (first 16 hex of the spec's sha256), `edgeml:ring`,
`edgeml:kind` (`rollout` or `rollback`); it then writes, with TagResource, `edgeml:settled-at` (epoch
seconds when every device of the ring had finished: the soak starts there), `edgeml:gate` (`passed`,
`failed`, `waiting` for a manual promotion, `promoted`) and `edgeml:state=canceled`. The deployment before
ours on the same thing group is the revision a rollback redeploys. CreateDeployment is sent with a client
token derived from the spec, ring and kind, so a retry after a crash between the call and its answer
creates nothing twice (BOTO: GreengrassV2 caches idempotent answers for up to 8 hours).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from edgeml.deploy.aws import Clients, deployment_history
from edgeml.deploy.spec import Ring, RolloutSpec

TAG_ROLLOUT = "edgeml:rollout"
TAG_SPEC = "edgeml:spec"
TAG_RING = "edgeml:ring"
TAG_KIND = "edgeml:kind"
TAG_GATE = "edgeml:gate"
TAG_SETTLED = "edgeml:settled-at"
TAG_STATE = "edgeml:state"
KIND_ROLLOUT = "rollout"
KIND_ROLLBACK = "rollback"
GATE_PASSED = "passed"
GATE_FAILED = "failed"
GATE_WAITING = "waiting"
GATE_PROMOTED = "promoted"
STATE_CANCELED = "canceled"


def spec_tag(spec: RolloutSpec) -> str:
    return spec.digest[:16]


def client_token(spec: RolloutSpec, ring: Ring, kind: str) -> str:
    return hashlib.sha256(f"{spec.digest}:{ring.name}:{kind}".encode()).hexdigest()[:40]


def deployment_tags(spec: RolloutSpec, ring: Ring, kind: str) -> dict[str, str]:
    return {TAG_ROLLOUT: spec.name, TAG_SPEC: spec_tag(spec), TAG_RING: ring.name, TAG_KIND: kind}


@dataclass
class RingState:
    ring: Ring
    ours: dict[str, Any] | None = None  # this rollout's deployment on the ring (GetDeployment answer)
    rollback: dict[str, Any] | None = None  # this rollout's rollback deployment on the ring
    previous: dict[str, Any] | None = None  # the revision before ours (what a rollback redeploys)
    current: dict[str, Any] | None = None  # the latest revision on the ring's group, whoever made it
    foreign_spec: str | None = None  # a deployment of a rollout with our name but another spec

    @property
    def tags(self) -> dict[str, str]:
        return dict((self.ours or {}).get("tags") or {})

    @property
    def gate(self) -> str | None:
        return self.tags.get(TAG_GATE)

    @property
    def promoted(self) -> bool:
        return self.gate in (GATE_PASSED, GATE_PROMOTED)

    @property
    def canceled(self) -> bool:
        return self.tags.get(TAG_STATE) == STATE_CANCELED

    @property
    def settled_at(self) -> float | None:
        value = self.tags.get(TAG_SETTLED)
        return float(value) if value else None


@dataclass
class RolloutState:
    spec: RolloutSpec
    rings: list[RingState] = field(default_factory=list)

    @property
    def touched(self) -> list[RingState]:
        return [r for r in self.rings if r.ours is not None]

    @property
    def phase(self) -> str:
        """not-started, in-progress, awaiting-promotion, completed, canceled, rolled-back, rolling-back."""
        touched = self.touched
        if not touched:
            return "not-started"
        if any(r.rollback is not None or r.gate == GATE_FAILED for r in touched):
            return "rolled-back" if all(r.rollback is not None for r in touched) else "rolling-back"
        if any(r.canceled for r in touched):
            return "canceled"
        if all(r.promoted for r in self.rings):
            return "completed"
        if any(r.gate == GATE_WAITING for r in touched):
            return "awaiting-promotion"
        return "in-progress"

    @property
    def active(self) -> RingState | None:
        """The first ring not yet promoted (None when all are)."""
        return next((r for r in self.rings if not r.promoted), None)


def read_state(clients: Clients, spec: RolloutSpec) -> RolloutState:
    state = RolloutState(spec)
    for ring in spec.rings:
        ring_state = RingState(ring)
        history = deployment_history(clients, ring.target_group)
        for index, deployment in enumerate(history):
            tags = deployment.get("tags") or {}
            if tags.get(TAG_ROLLOUT) != spec.name or TAG_SPEC not in tags:
                continue  # another rollout's, or not made by `edgeml deploy` (the CDK ring deployment)
            if tags.get(TAG_SPEC) != spec_tag(spec):
                ring_state.foreign_spec = tags.get(TAG_SPEC)
                continue
            if tags.get(TAG_KIND) == KIND_ROLLBACK:
                ring_state.rollback = deployment
            elif ring_state.ours is None:
                ring_state.ours = deployment
                earlier = [d for d in history[:index] if not _ours(d, spec)]
                ring_state.previous = earlier[-1] if earlier else None
        if ring_state.ours is None and history:
            ring_state.previous = history[-1]
        ring_state.current = history[-1] if history else None
        state.rings.append(ring_state)
    return state


def _ours(deployment: dict[str, Any], spec: RolloutSpec) -> bool:
    tags = deployment.get("tags") or {}
    return tags.get(TAG_ROLLOUT) == spec.name and tags.get(TAG_SPEC) == spec_tag(spec)


def set_tags(clients: Clients, deployment: dict[str, Any], tags: dict[str, str]) -> None:
    """Writes tags on a deployment and on our copy of its GetDeployment answer."""
    clients.greengrass.tag_resource(resourceArn=clients.deployment_arn(deployment["deploymentId"]), tags=tags)
    deployment["tags"] = {**(deployment.get("tags") or {}), **tags}
