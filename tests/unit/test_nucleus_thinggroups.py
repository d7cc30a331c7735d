"""The nucleus twin's ListThingGroupsForCoreDevice client side (NUC deployment/ThingGroupHelper.java and
DefaultDeploymentTask.getNonTargetGroupToRootPackagesMap), against botocore's Stubber on the twin's model."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from edgeml.twin.cloud.protocol.model import twin_botocore_session
from edgeml.twin.device.nucleus.errors import DeploymentError
from edgeml.twin.device.nucleus.thinggroups import (
    DENIED_WARNING,
    list_thing_groups,
    persisted_membership,
    still_counts,
)


def _greengrass() -> Any:
    return boto3.session.Session(botocore_session=twin_botocore_session()).client(
        "greengrassv2", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


def test_every_page_is_read_and_parents_count_as_the_devices_groups() -> None:
    greengrass = _greengrass()
    with Stubber(greengrass) as stub:
        stub.add_response(
            "list_thing_groups_for_core_device",
            {
                "thingGroups": [
                    {"thingGroupName": "leaf", "rootToParentThingGroups": [{"thingGroupName": "root"}]}
                ],
                "nextToken": "page-2",
            },
            {"coreDeviceThingName": "core-1"},
        )
        stub.add_response(
            "list_thing_groups_for_core_device",
            {"thingGroups": [{"thingGroupName": "other"}]},
            {"coreDeviceThingName": "core-1", "nextToken": "page-2"},
        )
        assert list_thing_groups(greengrass, "core-1") == {
            "thinggroup/leaf",
            "thinggroup/root",
            "thinggroup/other",
        }
        stub.assert_no_pending_responses()


def test_access_denied_falls_back_with_the_nucleus_warning_and_other_errors_fail_the_deployment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    greengrass = _greengrass()
    with Stubber(greengrass) as stub:
        stub.add_client_error(
            "list_thing_groups_for_core_device", "AccessDeniedException", "denied", http_status_code=403
        )
        with caplog.at_level(logging.WARNING):
            assert list_thing_groups(greengrass, "core-1") is None
        assert DENIED_WARNING in caplog.text
        stub.add_client_error(
            "list_thing_groups_for_core_device", "InternalServerException", "boom", http_status_code=500
        )
        with pytest.raises(DeploymentError, match="Error fetching thing group information"):
            list_thing_groups(greengrass, "core-1")


def test_a_left_group_stops_counting_but_thing_and_local_deployments_always_count() -> None:
    member_of = {"thinggroup/kept"}
    assert still_counts("thinggroup/kept", "thinggroup/target", member_of)
    assert not still_counts("thinggroup/left", "thinggroup/target", member_of)
    assert still_counts("thing/core-1", "thinggroup/target", member_of)
    assert still_counts("LOCAL_DEPLOYMENT", "thinggroup/target", member_of)
    assert not still_counts("thinggroup/kept", "thinggroup/kept", member_of)  # the target's come from its doc
    assert persisted_membership({"thinggroup/a", "thing/core-1", "LOCAL_DEPLOYMENT"}) == {"thinggroup/a"}
