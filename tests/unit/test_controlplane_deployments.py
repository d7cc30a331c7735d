"""Deployments: revisions, supersede, cancel/delete, validation, the job document, the IoT view."""

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


APP = "com.example.App"


def _error(call: Any, **kwargs: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(**kwargs)
    return caught.value


def _deploy(twin: Twin, target: str, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return dict(
        twin.gg.create_deployment(targetArn=target, components={APP: {"componentVersion": version}}, **extra)
    )


def _status(twin: Twin, thing: str) -> list[str]:
    listed = twin.gg.list_effective_deployments(coreDeviceThingName=thing)["effectiveDeployments"]
    return [d["coreDeviceExecutionStatus"] for d in listed]


def _finish(twin: Twin, thing: str, job_id: str, status: str = "SUCCEEDED") -> None:
    twin.plane.jobs_data.update_job_execution(jobId=job_id, thingName=thing, status="IN_PROGRESS")
    twin.plane.jobs_data.update_job_execution(jobId=job_id, thingName=thing, status=status)


@pytest.fixture
def fleet(twin: Twin) -> str:
    twin.publish(APP, "1.0.0")
    twin.publish(APP, "1.1.0")
    group = twin.group("fleet")
    twin.thing("dev1", "fleet")
    twin.thing("dev2", "fleet")
    return group


def test_group_deployment_queues_an_execution_per_member_and_sends_the_device_document(
    twin: Twin, fleet: str
) -> None:
    created = twin.gg.create_deployment(
        targetArn=fleet,
        deploymentName="ring-0",
        components={
            APP: {
                "componentVersion": "1.0.0",
                "configurationUpdate": {"merge": '{"TopK": 5}', "reset": ["/Mode"]},
                "runWith": {"posixUser": "ggc_user", "systemResourceLimits": {"memory": 1024, "cpus": 0.5}},
            }
        },
        deploymentPolicies={"failureHandlingPolicy": "DO_NOTHING"},
    )
    assert _status(twin, "dev1") == ["QUEUED"] and _status(twin, "dev2") == ["QUEUED"]
    document = json.loads(twin.plane.iot.get_job_document(jobId=created["iotJobId"])["document"])
    assert document["components"][APP] == {
        "version": "1.0.0",
        "configurationUpdate": {"merge": {"TopK": 5}, "reset": ["/Mode"]},
        "runWith": {"posixUser": "ggc_user", "systemResourceLimits": {"memory": 1024, "cpus": 0.5}},
    }
    assert (
        document["configurationArn"]
        == f"arn:aws:greengrass:{REGION}:{ACCOUNT}:configuration:thinggroup/fleet:1"
    )
    assert document["failureHandlingPolicy"] == "DO_NOTHING"
    assert document["componentUpdatePolicy"] == {"timeout": 60, "action": "NOTIFY_COMPONENTS"}
    assert document["configurationValidationPolicy"] == {"timeout": 30}
    assert document["requiredCapabilities"] == ["LINUX_RESOURCE_LIMITS"]
    got = twin.gg.get_deployment(deploymentId=created["deploymentId"])
    assert document["creationTimestamp"] == round(got["creationTimestamp"].timestamp() * 1000)
    assert got["deploymentPolicies"]["componentUpdatePolicy"] == {
        "timeoutInSeconds": 60,
        "action": "NOTIFY_COMPONENTS",
    }
    assert (got["deploymentStatus"], got["revisionId"], got["isLatestForTarget"]) == ("ACTIVE", "1", True)


def test_new_revision_supersedes_the_old_one_and_cancels_its_job(twin: Twin, fleet: str) -> None:
    first = _deploy(twin, fleet)
    _finish(twin, "dev1", first["iotJobId"])
    second = _deploy(twin, fleet, "1.1.0")
    old = twin.gg.get_deployment(deploymentId=first["deploymentId"])
    new = twin.gg.get_deployment(deploymentId=second["deploymentId"])
    assert (old["isLatestForTarget"], old["deploymentStatus"]) == (False, "INACTIVE")
    assert (new["isLatestForTarget"], new["revisionId"]) == (True, "2")
    assert twin.plane.iot.describe_job(jobId=first["iotJobId"])["job"]["status"] == "CANCELED"
    assert _status(twin, "dev1") == ["QUEUED", "SUCCEEDED"]  # what the device applied stays as it was
    assert _status(twin, "dev2") == ["QUEUED", "CANCELED"]
    latest = twin.gg.list_deployments(targetArn=fleet)["deployments"]
    history = twin.gg.list_deployments(targetArn=fleet, historyFilter="ALL")["deployments"]
    assert [d["deploymentId"] for d in latest] == [second["deploymentId"]]
    assert {d["deploymentId"] for d in history} == {first["deploymentId"], second["deploymentId"]}


def test_cancel_stops_delivery_changes_no_device_and_delete_needs_it(twin: Twin, fleet: str) -> None:
    twin.thing("dev-busy", "fleet")
    created = _deploy(twin, fleet)
    _finish(twin, "dev1", created["iotJobId"])
    twin.plane.jobs_data.start_next_pending_job_execution(thingName="dev-busy")
    conflict = _error(twin.gg.delete_deployment, deploymentId=created["deploymentId"])
    assert conflict.code == "ConflictException" and "cancel" in conflict.message
    twin.gg.cancel_deployment(deploymentId=created["deploymentId"])
    assert twin.gg.get_deployment(deploymentId=created["deploymentId"])["deploymentStatus"] == "CANCELED"
    assert _status(twin, "dev1") == ["SUCCEEDED"] and _status(twin, "dev2") == ["CANCELED"]
    assert _status(twin, "dev-busy") == ["IN_PROGRESS"]  # it had received the deployment: unchanged
    _finish(twin, "dev-busy", created["iotJobId"])
    assert _status(twin, "dev-busy") == ["SUCCEEDED"]
    twin.thing("dev3", "fleet")
    assert _status(twin, "dev3") == []
    assert _error(twin.gg.cancel_deployment, deploymentId=created["deploymentId"]).code == "ConflictException"
    twin.gg.delete_deployment(deploymentId=created["deploymentId"])
    assert (
        _error(twin.gg.get_deployment, deploymentId=created["deploymentId"]).code
        == "ResourceNotFoundException"
    )


def test_thing_group_deployment_is_continuous_for_things_that_join_later(twin: Twin, fleet: str) -> None:
    created = _deploy(twin, fleet)
    twin.thing("late", "fleet")
    pending = twin.plane.jobs_data.get_pending_job_executions(thingName="late")
    assert [j["jobId"] for j in pending["queuedJobs"]] == [created["iotJobId"]]
    twin.thing("later", "fleet")
    twin.plane.tick()
    listed = twin.plane.iot.list_job_executions_for_job(jobId=created["iotJobId"])["executionSummaries"]
    assert len(listed) == 4


def test_a_parent_group_deployment_reaches_things_in_child_groups(twin: Twin, fleet: str) -> None:
    twin.iot.create_thing_group(thingGroupName="fleet-eu", parentGroupName="fleet")
    twin.iot.create_thing_group(thingGroupName="fleet-eu-lab", parentGroupName="fleet-eu")
    twin.thing("eu1", "fleet-eu")
    created = _deploy(twin, fleet)
    assert _status(twin, "eu1") == ["QUEUED"]
    twin.thing("lab1", "fleet-eu-lab")  # joins a grandchild after the deployment
    assert [
        j["jobId"] for j in twin.plane.jobs_data.get_pending_job_executions(thingName="lab1")["queuedJobs"]
    ] == [created["iotJobId"]]
    twin.iot.remove_thing_from_thing_group(thingGroupName="fleet-eu", thingName="eu1")
    twin.plane.tick()
    assert _status(twin, "eu1") == ["CANCELED"]  # REMOVED, shown as canceled


def test_queued_execution_of_a_thing_that_left_the_group_is_removed(twin: Twin, fleet: str) -> None:
    created = _deploy(twin, fleet)
    twin.iot.remove_thing_from_thing_group(thingGroupName="fleet", thingName="dev2")
    twin.plane.tick()
    execution = twin.plane.iot.describe_job_execution(jobId=created["iotJobId"], thingName="dev2")[
        "execution"
    ]
    assert execution["status"] == "REMOVED"


def test_thing_target_completes_and_reports_completed(twin: Twin, fleet: str) -> None:
    created = _deploy(twin, f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/dev1")
    _finish(twin, "dev1", created["iotJobId"])
    assert _status(twin, "dev1") == ["COMPLETED"]
    assert twin.gg.get_deployment(deploymentId=created["deploymentId"])["deploymentStatus"] == "COMPLETED"
    assert twin.plane.iot.describe_job(jobId=created["iotJobId"])["job"]["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        (
            {"targetArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/nobody"},
            "ResourceNotFoundException",
            None,
        ),
        ({"targetArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/nothing"}, "ResourceNotFoundException", None),
        (
            {"targetArn": f"arn:aws:iot:eu-west-1:{ACCOUNT}:thinggroup/fleet"},
            "ValidationException",
            "targetArn",
        ),
        ({"components": {APP: {"componentVersion": "9.9.9"}}}, "ResourceNotFoundException", None),
        (
            {"components": {APP: {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "{bad"}}}},
            "ValidationException",
            f"components.{APP}.configurationUpdate.merge",
        ),
        (
            {"components": {APP: {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "[1]"}}}},
            "ValidationException",
            f"components.{APP}.configurationUpdate.merge",
        ),
        (
            {"components": {APP: {"componentVersion": "1.0.0", "configurationUpdate": {"reset": ["Mode"]}}}},
            "ValidationException",
            f"components.{APP}.configurationUpdate.reset",
        ),
        (
            {
                "targetArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/dev1",
                "parentTargetArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet",
            },
            "ValidationException",
            "targetArn",
        ),
        (
            {
                "iotJobConfiguration": {
                    "jobExecutionsRolloutConfig": {
                        "exponentialRate": {
                            "baseRatePerMinute": 5,
                            "incrementFactor": 1.55,
                            "rateIncreaseCriteria": {"numberOfNotifiedThings": 5},
                        }
                    }
                }
            },
            "ValidationException",
            "iotJobConfiguration.jobExecutionsRolloutConfig.exponentialRate.incrementFactor",
        ),
        (
            {
                "iotJobConfiguration": {
                    "jobExecutionsRolloutConfig": {
                        "exponentialRate": {
                            "baseRatePerMinute": 5,
                            "incrementFactor": 2,
                            "rateIncreaseCriteria": {},
                        }
                    }
                }
            },
            "ValidationException",
            "iotJobConfiguration.jobExecutionsRolloutConfig.exponentialRate.rateIncreaseCriteria",
        ),
        (
            {
                "iotJobConfiguration": {
                    "abortConfig": {
                        "criteriaList": [
                            {
                                "failureType": "ALL",
                                "action": "CANCEL",
                                "thresholdPercentage": 10.999,
                                "minNumberOfExecutedThings": 1,
                            }
                        ]
                    }
                }
            },
            "ValidationException",
            "iotJobConfiguration.abortConfig.criteriaList[0].thresholdPercentage",
        ),
    ],
)
def test_bad_deployments_get_the_service_error_and_change_nothing(
    twin: Twin, fleet: str, kwargs: dict[str, Any], code: str, field: str | None
) -> None:
    request = {"targetArn": fleet, "components": {APP: {"componentVersion": "1.0.0"}}, **kwargs}
    error = _error(twin.gg.create_deployment, **request)
    assert error.code == code
    if field:
        assert error.members["fields"][0]["name"] == field
    assert twin.gg.list_deployments(historyFilter="ALL")["deployments"] == []
    assert _status(twin, "dev1") == []


def test_client_token_makes_create_idempotent(twin: Twin, fleet: str) -> None:
    first = _deploy(twin, fleet, clientToken="token-1")
    again = _deploy(twin, fleet, clientToken="token-1")
    assert again == first
    assert len(twin.gg.list_deployments(historyFilter="ALL")["deployments"]) == 1
    twin.clock.advance(8 * 3600 + 1)  # BOTO: cached for up to 8 hours
    assert _deploy(twin, fleet, clientToken="token-1") != first


def test_iot_cancel_job_with_force_cancels_in_progress_executions(twin: Twin, fleet: str) -> None:
    created = _deploy(twin, fleet)
    twin.plane.jobs_data.start_next_pending_job_execution(thingName="dev1")
    twin.plane.iot.cancel_job(jobId=created["iotJobId"], force=True, reasonCode="ops")
    job = twin.plane.iot.describe_job(jobId=created["iotJobId"])["job"]
    assert (job["status"], job["forceCanceled"], job["reasonCode"]) == ("CANCELED", True, "ops")
    assert _status(twin, "dev1") == ["CANCELED"]
    assert twin.gg.get_deployment(deploymentId=created["deploymentId"])["deploymentStatus"] == "CANCELED"
    assert twin.plane.iot.owns_job(created["iotJobId"]) and not twin.plane.iot.owns_job("somebody-elses")


def test_deployment_jobs_are_in_the_greengrass_jobs_namespace(twin: Twin, fleet: str) -> None:
    created = _deploy(twin, fleet)
    assert twin.plane.iot.describe_job(jobId=created["iotJobId"])["job"]["namespaceId"] == "aws-gg-deployment"
    listed = twin.plane.iot.list_jobs(namespaceId="aws-gg-deployment")["jobs"]
    assert [j["jobId"] for j in listed] == [created["iotJobId"]]
    assert twin.plane.iot.list_jobs(namespaceId="other")["jobs"] == []
    for_thing = twin.plane.iot.list_job_executions_for_thing(thingName="dev1")["executionSummaries"]
    assert [s["jobId"] for s in for_thing] == [created["iotJobId"]]
