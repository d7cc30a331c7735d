"""The greengrassv2-data operations a nucleus calls (ListThingGroupsForCoreDevice,
GetDeploymentConfiguration), served from the supplementary model (protocol/models) through plain boto3 at
the twin's endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from edgeml.twin.cloud.controlplane.public_components import NUCLEUS_VERSIONS
from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.service import ManualClock
from edgeml.twin.device.nucleus.errors import DeploymentError
from edgeml.twin.device.nucleus.largeconfig import download_deployment_document
from tests.integration.cloud_twin_harness import client, client_error_code

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[CloudEndpoint]:
    # moto is process-global here: nothing of it is persisted, and every name below is unique
    with CloudEndpoint(tmp_path, clock=ManualClock(), persist_moto=False) as twin:
        yield twin


def test_list_thing_groups_for_core_device_gives_each_group_with_its_ancestors_root_first(
    endpoint: CloudEndpoint,
) -> None:
    """NUC deployment/ThingGroupHelper.java reads thingGroups[].thingGroupName and
    rootToParentThingGroups[].thingGroupName, paging on nextToken."""
    suffix = uuid.uuid4().hex[:8]
    iot, gg = client(endpoint, "iot"), client(endpoint, "greengrassv2")
    root, mid, leaf, other = (f"{part}-{suffix}" for part in ("root", "mid", "leaf", "other"))
    iot.create_thing_group(thingGroupName=root)
    iot.create_thing_group(thingGroupName=mid, parentGroupName=root)
    iot.create_thing_group(thingGroupName=leaf, parentGroupName=mid)
    iot.create_thing_group(thingGroupName=other)
    thing = f"core-{suffix}"
    iot.create_thing(thingName=thing)
    for group in (leaf, other):
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)

    groups = gg.list_thing_groups_for_core_device(coreDeviceThingName=thing)["thingGroups"]
    by_name = {group["thingGroupName"]: group for group in groups}
    assert set(by_name) == {leaf, other}  # the device's own groups; ancestors ride along
    assert [p["thingGroupName"] for p in by_name[leaf]["rootToParentThingGroups"]] == [root, mid]
    assert by_name[leaf]["thingGroupArn"] == iot.describe_thing_group(thingGroupName=leaf)["thingGroupArn"]
    assert by_name[other]["rootToParentThingGroups"] == []

    first = gg.list_thing_groups_for_core_device(coreDeviceThingName=thing, maxResults=1)
    second = gg.list_thing_groups_for_core_device(coreDeviceThingName=thing, nextToken=first["nextToken"])
    assert "nextToken" not in second
    assert [g["thingGroupName"] for g in first["thingGroups"] + second["thingGroups"]] == [
        g["thingGroupName"] for g in groups
    ]

    iot.remove_thing_from_thing_group(thingGroupName=other, thingName=thing)
    after = gg.list_thing_groups_for_core_device(coreDeviceThingName=thing)["thingGroups"]
    assert [group["thingGroupName"] for group in after] == [leaf]
    with pytest.raises(ClientError) as unknown:
        gg.list_thing_groups_for_core_device(coreDeviceThingName=f"nobody-{suffix}")
    assert client_error_code(unknown) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as too_many:
        gg.list_thing_groups_for_core_device(coreDeviceThingName=thing, maxResults=101)
    assert client_error_code(too_many) == ("ValidationException", 400)


def test_get_deployment_configuration_hands_a_presigned_url_to_the_device_document_and_its_digest(
    endpoint: CloudEndpoint,
) -> None:
    """NUC deployment/DeploymentDocumentDownloader.java: preSignedUrl, integrityCheck.algorithm/digest
    (Digest.calculate: Base64 of the SHA-256), the document in the job document's format."""
    suffix = uuid.uuid4().hex[:8]
    iot, gg = client(endpoint, "iot"), client(endpoint, "greengrassv2")
    group_arn = iot.create_thing_group(thingGroupName=f"fleet-{suffix}")["thingGroupArn"]
    member, outsider = f"core-{suffix}", f"outsider-{suffix}"
    for thing in (member, outsider):
        iot.create_thing(thingName=thing)
    iot.add_thing_to_thing_group(thingGroupName=f"fleet-{suffix}", thingName=member)
    created = gg.create_deployment(
        targetArn=group_arn,
        components={"aws.greengrass.Nucleus": {"componentVersion": NUCLEUS_VERSIONS[-1]}},
    )

    answer = gg.get_deployment_configuration(
        deploymentId=created["deploymentId"], coreDeviceThingName=member, s3EndpointType="REGIONAL"
    )
    assert answer["preSignedUrl"].startswith(endpoint.endpoint_url)
    with urllib.request.urlopen(answer["preSignedUrl"], timeout=10) as response:
        text = response.read()
    assert answer["integrityCheck"]["algorithm"] == "SHA-256"
    assert answer["integrityCheck"]["digest"] == base64.b64encode(hashlib.sha256(text).digest()).decode()
    job_document = json.loads(iot.get_job_document(jobId=created["iotJobId"])["document"])
    assert json.loads(text) == job_document

    with pytest.raises(ClientError) as not_targeted:
        gg.get_deployment_configuration(deploymentId=created["deploymentId"], coreDeviceThingName=outsider)
    assert client_error_code(not_targeted) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as no_deployment:
        gg.get_deployment_configuration(deploymentId=f"missing-{suffix}", coreDeviceThingName=member)
    assert client_error_code(no_deployment) == ("ResourceNotFoundException", 404)


def test_the_nucleus_twin_downloads_the_full_document_and_refuses_one_whose_digest_differs(
    endpoint: CloudEndpoint,
) -> None:
    """NUC deployment/DeploymentDocumentDownloader.java checkIntegrity: the downloaded text must hash to the
    digest the service gave, else "Integrity check failed ..."."""
    suffix = uuid.uuid4().hex[:8]
    iot, gg = client(endpoint, "iot"), client(endpoint, "greengrassv2")
    thing = f"core-{suffix}"
    thing_arn = iot.create_thing(thingName=thing)["thingArn"]
    created = gg.create_deployment(
        targetArn=thing_arn,
        components={"aws.greengrass.Nucleus": {"componentVersion": NUCLEUS_VERSIONS[-1]}},
    )
    deployment_id = created["deploymentId"]
    document = download_deployment_document(gg, thing, deployment_id)
    assert document == json.loads(iot.get_job_document(jobId=created["iotJobId"])["document"])

    real = gg.get_deployment_configuration(deploymentId=deployment_id, coreDeviceThingName=thing)
    tampered = {**real, "integrityCheck": {"algorithm": "SHA-256", "digest": "AAAA"}}
    tampered.pop("ResponseMetadata", None)
    with Stubber(gg) as stub:
        stub.add_response("get_deployment_configuration", tampered)
        with pytest.raises(DeploymentError, match="Integrity check failed"):
            download_deployment_document(gg, thing, deployment_id)
