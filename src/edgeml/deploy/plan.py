"""`edgeml deploy plan`: what a rollout will do per ring, checked against the account, deploying nothing.

Per ring: its devices (by rings.assign), the thing group its deployment targets, what the ring's devices
get now from that group's latest revision and what they get after (the spec's components; a component
the previous revision lists and the spec does not stays in the ring's deployment, since a revision that
leaves a component out uninstalls it: DG create-deployments, fact 2 of the semantics notes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from edgeml.deploy.aws import Clients, call_failed, component_version_exists, error_code, group_members
from edgeml.deploy.errors import SpecInvalid
from edgeml.deploy.rings import assign
from edgeml.deploy.spec import RolloutSpec
from edgeml.deploy.state import RolloutState, read_state

RING_ATTRIBUTE = "edgemlRingOf"  # on a share ring's thing group: the parent it was split from


@dataclass
class RingPlan:
    name: str
    group: str
    devices: list[str]
    before: dict[str, str]  # component -> version the ring's group deploys now ({} = none yet)
    after: dict[str, str]
    to_add: list[str] = field(default_factory=list)  # devices to add to a share ring's group
    to_remove: list[str] = field(default_factory=list)  # members of a share ring's group no longer in it

    @property
    def changes(self) -> dict[str, tuple[str | None, str | None]]:
        names = sorted(set(self.before) | set(self.after))
        return {
            n: (self.before.get(n), self.after.get(n))
            for n in names
            if self.before.get(n) != self.after.get(n)
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "ring": self.name,
            "thingGroup": self.group,
            "devices": len(self.devices),
            "before": self.before,
            "after": self.after,
            "changes": {n: {"before": b, "after": a} for n, (b, a) in self.changes.items()},
            "devicesToAdd": len(self.to_add),
            "devicesToRemove": len(self.to_remove),
        }


@dataclass
class Plan:
    spec: RolloutSpec
    rings: list[RingPlan]

    def as_json(self) -> dict[str, Any]:
        return {
            "rollout": self.spec.name,
            "spec": self.spec.digest,
            "devices": sum(len(r.devices) for r in self.rings),
            "rings": [r.as_json() for r in self.rings],
        }


def deployed_versions(deployment: Mapping[str, Any] | None) -> dict[str, str]:
    if not deployment:
        return {}
    return {name: str(c["componentVersion"]) for name, c in (deployment.get("components") or {}).items()}


def plan_rollout(
    spec: RolloutSpec,
    members: Mapping[str, Sequence[str]],
    current: Mapping[str, Mapping[str, Any] | None],
) -> Plan:
    """The plan from the thing groups' members and each ring's latest revision (no AWS calls)."""
    assigned = assign(spec, members)
    wanted = {c.name: c.version for c in spec.components}
    rings = []
    for ring in spec.rings:
        devices = assigned[ring.name]
        before = deployed_versions(current.get(ring.name))
        after = {**before, **wanted}
        plan = RingPlan(ring.name, ring.target_group, devices, before, after)
        if ring.parent_group is not None:
            existing = set(members.get(ring.target_group, ()))
            chosen = set(devices)
            plan.to_add = sorted(chosen - existing)
            plan.to_remove = sorted(existing - chosen)
        rings.append(plan)
    return Plan(spec, rings)


def _check_groups(clients: Clients, spec: RolloutSpec) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for index, ring in enumerate(spec.rings):
        if ring.thing_group is not None:
            found = group_members(clients, ring.thing_group)
            if found is None:
                raise SpecInvalid(
                    f"{spec.source}: rings[{index}].thingGroup: thing group {ring.thing_group} does not exist"
                )
            members[ring.thing_group] = found
            continue
        assert ring.parent_group is not None
        if ring.parent_group not in members:
            found = group_members(clients, ring.parent_group)
            if found is None:
                raise SpecInvalid(
                    f"{spec.source}: rings[{index}].parentGroup: thing group "
                    f"{ring.parent_group} does not exist"
                )
            members[ring.parent_group] = found
        try:
            described = clients.iot.describe_thing_group(thingGroupName=ring.target_group)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise call_failed(f"iot DescribeThingGroup {ring.target_group}", error) from error
            members[ring.target_group] = []
            continue
        attributes = (described.get("thingGroupProperties") or {}).get("attributePayload") or {}
        if (attributes.get("attributes") or {}).get(RING_ATTRIBUTE) != ring.parent_group:
            raise SpecInvalid(
                f"{spec.source}: rings[{index}]: thing group {ring.target_group} exists and was not made by "
                f"edgeml for a share of {ring.parent_group}; rename the ring"
            )
        members[ring.target_group] = group_members(clients, ring.target_group) or []
    return members


def _check_components(clients: Clients, spec: RolloutSpec) -> None:
    for component in spec.components:
        if not component_version_exists(clients, component.name, component.version):
            raise SpecInvalid(
                f"{spec.source}: components.{component.name}.version: component {component.name} version "
                f"{component.version} does not exist in the account"
            )


def check_and_plan(clients: Clients, spec: RolloutSpec) -> tuple[Plan, RolloutState]:
    """Every check that needs the account, then the plan and where the rollout stands."""
    _check_components(clients, spec)
    members = _check_groups(clients, spec)
    state = read_state(clients, spec)
    for ring_state in state.rings:
        if ring_state.foreign_spec is not None:
            raise SpecInvalid(
                f"{spec.source}: name: rollout {spec.name} already exists with another spec "
                f"({ring_state.foreign_spec}); give a changed spec a new name"
            )
    current = {r.ring.name: (r.previous if r.ours is not None else r.current) for r in state.rings}
    return plan_rollout(spec, members, current), state
