"""Tags on GreengrassV2 resources: components, component versions, deployments, core devices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from controlplane_kit import ACCOUNT, REGION, Twin, started_twin

from edgeml.twin.cloud.service import ServiceError


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    yield from started_twin(tmp_path, monkeypatch)


def _error(call: Any, **kwargs: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(**kwargs)
    return caught.value


def test_tags_on_a_version_and_a_deployment_round_trip(twin: Twin) -> None:
    arn = twin.publish("com.example.A", "1.0.0", artifact=None)
    twin.gg.tag_resource(resourceArn=arn, tags={"team": "ml", "ring": "0"})
    twin.gg.untag_resource(resourceArn=arn, tagKeys=["ring"])
    assert twin.gg.list_tags_for_resource(resourceArn=arn) == {"tags": {"team": "ml"}}
    assert twin.gg.describe_component(arn=arn)["tags"] == {"team": "ml"}
    twin.thing("dev1")
    created = twin.gg.create_deployment(
        targetArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/dev1",
        components={"com.example.A": {"componentVersion": "1.0.0"}},
        tags={"owner": "ops"},
    )
    deployment = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:deployments:{created['deploymentId']}"
    assert twin.gg.list_tags_for_resource(resourceArn=deployment) == {"tags": {"owner": "ops"}}
    assert twin.gg.get_deployment(deploymentId=created["deploymentId"])["tags"] == {"owner": "ops"}


def test_core_device_tags_and_delete(twin: Twin) -> None:
    message = {
        "ggcVersion": "2.14.3",
        "platform": "linux",
        "architecture": "amd64",
        "timestamp": 1767225600000,
        "overallDeviceStatus": "HEALTHY",
        "messageType": "COMPLETE",
        "components": [],
    }
    twin.plane.on_iot_publish("$aws/things/edge/greengrassv2/health/json", json.dumps(message), REGION)
    device = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:coreDevices:edge"
    twin.gg.tag_resource(resourceArn=device, tags={"site": "lab"})
    assert twin.gg.get_core_device(coreDeviceThingName="edge")["tags"] == {"site": "lab"}
    twin.gg.delete_core_device(coreDeviceThingName="edge")
    assert _error(twin.gg.get_core_device, coreDeviceThingName="edge").code == "ResourceNotFoundException"
    assert _error(twin.gg.list_tags_for_resource, resourceArn=device).code == "ResourceNotFoundException"


def test_unknown_resources_reserved_keys_and_too_many_tags_are_refused(twin: Twin) -> None:
    arn = twin.publish("com.example.A", "1.0.0", artifact=None)
    missing = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:com.example.A:versions:9.9.9"
    assert (
        _error(twin.gg.tag_resource, resourceArn=missing, tags={"a": "b"}).code == "ResourceNotFoundException"
    )
    reserved = _error(twin.gg.tag_resource, resourceArn=arn, tags={"aws:owner": "x"})
    assert reserved.code == "ValidationException" and "aws:" in reserved.message
    twin.gg.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(200)})
    too_many = _error(twin.gg.tag_resource, resourceArn=arn, tags={"one-more": "v"})
    assert too_many.code == "ValidationException"
    assert len(twin.gg.list_tags_for_resource(resourceArn=arn)["tags"]) == 200
