"""The whole cloud twin through plain boto3 at one endpoint: a component version from an inline recipe
with an S3 artifact, a deployment to a thing group, and a device's view of it through iot-jobs-data."""

from __future__ import annotations

import hashlib
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_twin_harness import ACCOUNT, REGION, client, endpoint_with
from nucleus_harness import recipe

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.service import ManualClock
from edgeml.twin.loopback import wait_for


@pytest.fixture()
def twin(tmp_path: Path) -> Iterator[CloudEndpoint]:
    with endpoint_with(tmp_path) as endpoint:
        yield endpoint


def _recipe(name: str, version: str, uri: str) -> bytes:
    lifecycle = {"Run": "python3 -u {artifacts:path}/hello.py"}
    return json.dumps(recipe(name, version, lifecycle, artifacts=[{"Uri": uri}])).encode()


def test_publish_deploy_to_a_thing_group_and_a_device_sees_its_job(twin):
    suffix = uuid.uuid4().hex[:8]
    bucket, key, artifact = f"e2e-artifacts-{suffix}", "hello/1.0.0/hello.py", b"print('hello')\n"
    name = f"com.example.Hello{suffix}"
    s3, iot, greengrass, jobs = (
        client(twin, service) for service in ("s3", "iot", "greengrassv2", "iot-jobs-data")
    )
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=artifact)

    created = greengrass.create_component_version(inlineRecipe=_recipe(name, "1.0.0", f"s3://{bucket}/{key}"))
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    version_arn = created["arn"]
    deployable = wait_for(
        lambda: (
            (d := greengrass.describe_component(arn=version_arn))["status"]["componentState"] == "DEPLOYABLE"
            and d
        ),
        "the component version to become DEPLOYABLE",
        timeout_s=10,
    )
    assert deployable["componentVersion"] == "1.0.0"
    recipe = json.loads(greengrass.get_component(arn=version_arn, recipeOutputFormat="JSON")["recipe"])
    stored = recipe["Manifests"][0]["Artifacts"][0]
    assert stored["Digest"]  # computed by the service, as Greengrass does
    assert stored["Algorithm"] == "SHA-256"

    url = greengrass.get_component_version_artifact(arn=version_arn, artifactName=key)["preSignedUrl"]
    with urllib.request.urlopen(url, timeout=10) as download:
        assert hashlib.sha256(download.read()).digest() == hashlib.sha256(artifact).digest()

    group = f"e2e-fleet-{suffix}"
    things = [f"e2e-core-{suffix}-{index}" for index in range(3)]
    group_arn = iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
    for thing in things:
        iot.create_thing(thingName=thing)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    deployment = greengrass.create_deployment(
        targetArn=group_arn, deploymentName="e2e", components={name: {"componentVersion": "1.0.0"}}
    )
    got = greengrass.get_deployment(deploymentId=deployment["deploymentId"])
    assert got["targetArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}"
    assert got["isLatestForTarget"] is True
    assert iot.describe_job(jobId=deployment["iotJobId"])["job"]["jobId"] == deployment["iotJobId"]

    device = things[0]
    pending = wait_for(
        lambda: jobs.get_pending_job_executions(thingName=device)["queuedJobs"], "the device's queued job", 10
    )
    assert [job["jobId"] for job in pending] == [deployment["iotJobId"]]
    started = jobs.start_next_pending_job_execution(thingName=device)["execution"]
    assert started["status"] == "IN_PROGRESS"
    document = started["jobDocument"]
    assert name in document
    jobs.update_job_execution(
        thingName=device,
        jobId=deployment["iotJobId"],
        status="SUCCEEDED",
        statusDetails={"detailed-deployment-status": "SUCCESSFUL"},
    )
    execution = iot.describe_job_execution(jobId=deployment["iotJobId"], thingName=device)["execution"]
    assert execution["status"] == "SUCCEEDED"
    effective = greengrass.list_effective_deployments(coreDeviceThingName=device)["effectiveDeployments"]
    assert [(e["deploymentId"], e["coreDeviceExecutionStatus"]) for e in effective] == [
        (deployment["deploymentId"], "SUCCEEDED")  # SUCCEEDED for a thing-group target
    ]


def test_an_injected_clock_drives_rollout_and_timeout_through_the_endpoint(tmp_path):
    """ManualClock given to the endpoint: minutes of rollout and an in-progress timeout without waiting."""
    clock = ManualClock()
    suffix = uuid.uuid4().hex[:8]
    with endpoint_with(tmp_path, clock=clock) as endpoint:
        iot, greengrass, jobs = (
            client(endpoint, service) for service in ("iot", "greengrassv2", "iot-jobs-data")
        )
        group_arn = iot.create_thing_group(thingGroupName=f"clock-{suffix}")["thingGroupArn"]
        things = [f"clock-{suffix}-{index}" for index in range(5)]
        for thing in things:
            iot.create_thing(thingName=thing)
            iot.add_thing_to_thing_group(thingGroupName=f"clock-{suffix}", thingName=thing)
        deployment = greengrass.create_deployment(
            targetArn=group_arn,
            components={},
            iotJobConfiguration={
                "jobExecutionsRolloutConfig": {"maximumPerMinute": 1},
                "timeoutConfig": {"inProgressTimeoutInMinutes": 1},
            },
        )
        job_id = deployment["iotJobId"]

        def queued() -> int:
            return int(iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"]["numberOfQueuedThings"])

        assert queued() == 1  # one a minute: only the first minute's thing so far
        clock.advance(4 * 60)
        wait_for(lambda: queued() == 5, "four more minutes of rollout to notify every thing", timeout_s=10)

        started = jobs.start_next_pending_job_execution(thingName=things[0])["execution"]
        assert started["status"] == "IN_PROGRESS"
        clock.advance(61)
        wait_for(
            lambda: (
                iot.describe_job_execution(jobId=job_id, thingName=things[0])["execution"]["status"]
                == "TIMED_OUT"
            ),
            "the in-progress execution to time out after its minute",
            timeout_s=10,
        )


def test_a_nucleus_health_publish_through_iot_data_makes_a_core_device(twin):
    thing = f"health-{uuid.uuid4().hex[:8]}"
    client(twin, "iot").create_thing(thingName=thing)
    health = {
        "thing": thing,
        "ggcVersion": "2.14.0",
        "platform": "linux",
        "architecture": "amd64",
        "runtime": "aws_nucleus_classic",
        "overallDeviceStatus": "HEALTHY",
        "timestamp": 1_767_225_600_000,
        "messageType": "COMPLETE",
        "components": [],
    }
    client(twin, "iot-data").publish(
        topic=f"$aws/things/{thing}/greengrassv2/health/json", qos=1, payload=json.dumps(health).encode()
    )
    device = client(twin, "greengrassv2").get_core_device(coreDeviceThingName=thing)
    assert (device["coreVersion"], device["platform"], device["architecture"], device["status"]) == (
        "2.14.0",
        "linux",
        "amd64",
        "HEALTHY",
    )
