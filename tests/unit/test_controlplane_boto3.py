"""The control plane through plain boto3 at the twin's one endpoint (loopback), on a ManualClock.

What a user's scripts and a device see: error codes with their HTTP status and members, rollout in
describe_job, a device's deployment through iot-jobs-data, fleet status through iot-data publish.
"""

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

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.service import ManualClock
from tests.integration.cloud_twin_harness import client, client_error_code

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def endpoint(tmp_path: Path, clock: ManualClock) -> Iterator[CloudEndpoint]:
    # moto is process-global here: nothing of it is persisted, and every name below is unique
    with CloudEndpoint(tmp_path, clock=clock, persist_moto=False) as twin:
        yield twin


def test_publish_roll_out_fail_on_a_device_and_see_it_in_the_fleet(
    endpoint: CloudEndpoint, clock: ManualClock
) -> None:
    suffix = uuid.uuid4().hex[:8]
    s3, iot, gg, jobs, data = (
        client(endpoint, s) for s in ("s3", "iot", "greengrassv2", "iot-jobs-data", "iot-data")
    )
    bucket, key, body = f"cp-{suffix}", "app/1.0.0/app.zip", b"zip bytes"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    name = f"com.example.Cp{suffix}"
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": "1.0.0",
        "Manifests": [{"Platform": {"os": "linux"}, "Artifacts": [{"Uri": f"s3://{bucket}/{key}"}]}],
    }
    arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]

    with pytest.raises(ClientError) as duplicate:
        gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
    assert client_error_code(duplicate) == ("ConflictException", 409)
    with pytest.raises(ClientError) as bad:
        gg.create_component_version(inlineRecipe=json.dumps({**recipe, "ComponentVersion": "v1"}).encode())
    assert client_error_code(bad) == ("ValidationException", 400)
    assert bad.value.response["fields"][0]["name"] == "inlineRecipe"

    stored = json.loads(gg.get_component(arn=arn)["recipe"])
    digest = stored["Manifests"][0]["Artifacts"][0]["Digest"]
    assert digest == base64.b64encode(hashlib.sha256(body).digest()).decode()
    url = gg.get_component_version_artifact(arn=arn, artifactName=f"{bucket}/{key}")["preSignedUrl"]
    assert url.startswith(endpoint.endpoint_url)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == body

    group = f"fleet-{suffix}"
    group_arn = iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
    things = [f"dev-{suffix}-{i}" for i in range(2)]
    for thing in things:
        iot.create_thing(thingName=thing)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    created = gg.create_deployment(
        targetArn=group_arn,
        components={name: {"componentVersion": "1.0.0"}},
        iotJobConfiguration={"jobExecutionsRolloutConfig": {"maximumPerMinute": 1}},
    )
    job = iot.describe_job(jobId=created["iotJobId"])["job"]
    assert (job["status"], job["jobProcessDetails"]["numberOfQueuedThings"]) == ("IN_PROGRESS", 1)
    clock.advance(60)
    assert (
        iot.describe_job(jobId=created["iotJobId"])["job"]["jobProcessDetails"]["numberOfQueuedThings"] == 2
    )

    device = things[0]
    execution = jobs.start_next_pending_job_execution(thingName=device)["execution"]
    assert json.loads(execution["jobDocument"])["components"][name] == {"version": "1.0.0"}
    with pytest.raises(ClientError) as stale:
        jobs.update_job_execution(
            jobId=created["iotJobId"], thingName=device, status="FAILED", expectedVersion=1
        )
    assert client_error_code(stale)[0] == "InvalidStateTransitionException"
    jobs.update_job_execution(
        jobId=created["iotJobId"],
        thingName=device,
        status="FAILED",
        statusDetails={
            "detailed-deployment-status": "FAILED_NO_STATE_CHANGE",
            "deployment-failure-cause": "download failed",
            "deployment-error-stack": "[DEPLOYMENT_FAILURE, ARTIFACT_DOWNLOAD_ERROR, S3_ACCESS_DENIED]",
            "deployment-error-types": "[PERMISSION_ERROR]",
        },
    )
    effective = gg.list_effective_deployments(coreDeviceThingName=device)["effectiveDeployments"][0]
    assert effective["coreDeviceExecutionStatus"] == "FAILED"
    assert effective["reason"] == "S3_ACCESS_DENIED: FAILED_NO_STATE_CHANGE: download failed"
    assert effective["statusDetails"]["errorTypes"] == ["PERMISSION_ERROR"]

    health = {
        "ggcVersion": "2.14.3",
        "platform": "linux",
        "architecture": "amd64",
        "thing": device,
        "overallDeviceStatus": "HEALTHY",
        "sequenceNumber": 1,
        "timestamp": int(clock.now().timestamp() * 1000),
        "messageType": "COMPLETE",
        "trigger": "THING_GROUP_DEPLOYMENT",
        "components": [
            {
                "componentName": "aws.greengrass.Nucleus",
                "version": "2.14.3",
                "isRoot": False,
                "status": "FINISHED",
                "fleetConfigArns": [],
            }
        ],
    }
    data.publish(topic=f"$aws/things/{device}/greengrassv2/health/json", qos=1, payload=json.dumps(health))
    core = gg.get_core_device(coreDeviceThingName=device)
    assert (core["coreVersion"], core["status"], core["architecture"]) == ("2.14.3", "HEALTHY", "amd64")
    installed = gg.list_installed_components(coreDeviceThingName=device, topologyFilter="ALL")
    assert [c["lifecycleState"] for c in installed["installedComponents"]] == ["FINISHED"]

    with pytest.raises(ClientError) as missing:
        gg.get_core_device(coreDeviceThingName=f"nobody-{suffix}")
    assert client_error_code(missing) == ("ResourceNotFoundException", 404)
    assert missing.value.response["resourceType"] == "CoreDevice"
