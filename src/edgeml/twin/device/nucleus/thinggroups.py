"""The device's thing groups as the nucleus learns them at each deployment: NUC
deployment/ThingGroupHelper.java (ListThingGroupsForCoreDevice, paged; each group and its
rootToParentThingGroups, as `thinggroup/<name>`) and
DefaultDeploymentTask.getNonTargetGroupToRootPackagesMap (which groups' root components still count)."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from edgeml.twin.device.nucleus.errors import DeploymentError

LOG = logging.getLogger(__name__)
THING_GROUP_PREFIX = "thinggroup/"  # ThingGroupHelper.THING_GROUP_RESOURCE_TYPE_PREFIX
THING_PREFIX = "thing/"  # DefaultDeploymentTask.DEVICE_DEPLOYMENT_GROUP_NAME_PREFIX
LOCAL_DEPLOYMENT = "LOCAL_DEPLOYMENT"  # DeploymentDocumentConverter.LOCAL_DEPLOYMENT_GROUP_NAME
DENIED_WARNING = (
    "Failed to get thing group hierarchy. Deployment will proceed. To automatically clean up unused "
    "components, please add greengrass:ListThingGroupsForCoreDevice permission to your IoT Thing policy."
)


def list_thing_groups(greengrass: Any, thing_name: str) -> set[str] | None:
    """`thinggroup/<g>` for each group of the device and each of its ancestors; None when the call is
    denied (403: the nucleus then falls back to the membership it persisted). Any other failure fails the
    deployment, as DefaultDeploymentTask does ("Error fetching thing group information")."""
    names: set[str] = set()
    token: str | None = None
    try:
        while True:
            answer = greengrass.list_thing_groups_for_core_device(
                coreDeviceThingName=thing_name, **({"nextToken": token} if token else {})
            )
            for group in answer.get("thingGroups") or []:
                names.add(THING_GROUP_PREFIX + group["thingGroupName"])
                names.update(
                    THING_GROUP_PREFIX + parent["thingGroupName"]
                    for parent in group.get("rootToParentThingGroups") or []
                )
            token = answer.get("nextToken")
            if not token:
                return names
    except ClientError as error:
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            LOG.warning("%s (%s)", DENIED_WARNING, error)
            return None
        raise DeploymentError(f"Error fetching thing group information: {error}", []) from error
    except BotoCoreError as error:
        raise DeploymentError(f"Error fetching thing group information: {error}", []) from error


def still_counts(group: str, target_group: str, member_of: set[str]) -> bool:
    """Whether a non-target group's root components are kept: a thing or local deployment always, a thing
    group only while the device is in it (getNonTargetGroupToRootPackagesMap)."""
    return group != target_group and (
        group.startswith(THING_PREFIX) or group == LOCAL_DEPLOYMENT or group in member_of
    )


def persisted_membership(groups: set[str]) -> set[str]:
    """getPersistedMembershipInfo: the thing groups the device has root components from."""
    return {g for g in groups if g != LOCAL_DEPLOYMENT and not g.startswith(THING_PREFIX)}
