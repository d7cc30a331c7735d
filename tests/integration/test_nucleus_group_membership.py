"""Thing-group membership on the nucleus twin (NUC = aws-greengrass-nucleus
src/main/java/com/aws/greengrass/): the device asks ListThingGroupsForCoreDevice at each deployment and
drops the root components of the groups it left."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cloud_twin_harness import client
from nucleus_harness import deploy, group_arn, one_device, outcome_of, publish, recipe, unique

pytestmark = pytest.mark.slow
SLEEP = "exec sleep 600"


def _versions(*names: str) -> dict[str, Any]:
    return {name: {"componentVersion": "1.0.0"} for name in names}


def test_thing_group_helper_java_a_device_removed_from_a_group_loses_its_components_at_the_next_deployment(
    tmp_path: Path,
) -> None:
    """NUC deployment/ThingGroupHelper.java (ListThingGroupsForCoreDevice) and
    DefaultDeploymentTask.getNonTargetGroupToRootPackagesMap (a group the device left no longer counts);
    DefaultActivator removes what no group or dependency keeps. DG manage-deployments: "if you remove a
    core device from a thing group, the next deployment removes that group's components"."""
    only_left, shared, dependency, only_kept = (
        unique(f"com.example.{part}") for part in ("OnlyLeft", "Shared", "Dep", "OnlyKept")
    )
    left, kept = unique("group-left-"), unique("group-kept-")
    with one_device(tmp_path, [left, kept]) as (endpoint, twin):
        for name in (only_left, shared, dependency):
            publish(endpoint, recipe(name, "1.0.0", {"Run": SLEEP}))
        publish(
            endpoint,
            recipe(only_kept, "1.0.0", {"Run": SLEEP}, dependencies={dependency: ("1.0.0", "HARD")}),
        )
        first = deploy(endpoint, group_arn(endpoint, left), _versions(only_left, shared, dependency))
        assert outcome_of(twin, first).status == "SUCCESSFUL"
        second = deploy(endpoint, group_arn(endpoint, kept), _versions(shared, only_kept))
        assert outcome_of(twin, second).status == "SUCCESSFUL"
        assert {only_left, shared, dependency, only_kept} <= set(twin.states())

        client(endpoint, "iot").remove_thing_from_thing_group(thingGroupName=left, thingName=twin.thing_name)
        # leaving a group deploys nothing by itself: the components stay until the next deployment
        assert only_left in twin.states()
        groups = client(endpoint, "greengrassv2").list_thing_groups_for_core_device(
            coreDeviceThingName=twin.thing_name
        )["thingGroups"]
        assert [group["thingGroupName"] for group in groups] == [kept]

        next_deployment = deploy(endpoint, group_arn(endpoint, kept), _versions(shared, only_kept))
        assert outcome_of(twin, next_deployment).status == "SUCCESSFUL"
        states = twin.states()
        assert only_left not in states  # only the group it left had it
        assert not twin.paths.recipe_path(
            only_left, "1.0.0"
        ).exists()  # ComponentManager.cleanupStaleVersions
        assert states[shared] == "RUNNING"  # the other group keeps it
        assert states[dependency] == "RUNNING"  # a root of the left group, still a dependency of only_kept
        assert states[only_kept] == "RUNNING"


def test_thing_group_helper_java_the_parent_of_the_devices_group_still_counts(tmp_path: Path) -> None:
    """NUC deployment/ThingGroupHelper.java: "adding parent thing groups" (rootToParentThingGroups): the
    components of a deployment to the parent group stay when another group deploys."""
    from_parent, from_other = unique("com.example.FromParent"), unique("com.example.FromOther")
    parent, child, other = unique("group-parent-"), unique("group-child-"), unique("group-other-")
    with one_device(tmp_path, [other]) as (endpoint, twin):
        iot = client(endpoint, "iot")
        iot.create_thing_group(thingGroupName=parent)
        iot.create_thing_group(thingGroupName=child, parentGroupName=parent)
        iot.add_thing_to_thing_group(thingGroupName=child, thingName=twin.thing_name)
        for name in (from_parent, from_other):
            publish(endpoint, recipe(name, "1.0.0", {"Run": SLEEP}))
        assert outcome_of(
            twin, deploy(endpoint, group_arn(endpoint, parent), _versions(from_parent))
        ).status == ("SUCCESSFUL")
        assert outcome_of(
            twin, deploy(endpoint, group_arn(endpoint, other), _versions(from_other))
        ).status == ("SUCCESSFUL")
        states = twin.states()
        assert states[from_parent] == "RUNNING" and states[from_other] == "RUNNING"
