"""The IoT jobs data plane a device uses: pending executions, start next, updates, versions, terminals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from controlplane_kit import Twin, started_twin

from edgeml.twin.cloud.service import ServiceError

APP = "com.example.App"


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    yield from started_twin(tmp_path, monkeypatch)


@pytest.fixture
def job_id(twin: Twin) -> str:
    twin.publish(APP, "1.0.0")
    group = twin.group("fleet")
    twin.thing("dev1", "fleet")
    created = twin.gg.create_deployment(targetArn=group, components={APP: {"componentVersion": "1.0.0"}})
    return str(created["iotJobId"])


def _error(call: Any, **kwargs: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(**kwargs)
    return caught.value


def test_start_next_moves_the_queued_execution_to_in_progress_with_its_document(
    twin: Twin, job_id: str
) -> None:
    data = twin.plane.jobs_data
    assert [j["jobId"] for j in data.get_pending_job_executions(thingName="dev1")["queuedJobs"]] == [job_id]
    twin.clock.advance(30)
    started = data.start_next_pending_job_execution(thingName="dev1", statusDetails={"step": "download"})
    execution = started["execution"]
    assert (execution["status"], execution["versionNumber"]) == ("IN_PROGRESS", 2)
    assert execution["startedAt"] == execution["queuedAt"] + 30
    assert json.loads(execution["jobDocument"])["components"][APP]["version"] == "1.0.0"
    pending = data.get_pending_job_executions(thingName="dev1")
    assert pending["queuedJobs"] == [] and [j["jobId"] for j in pending["inProgressJobs"]] == [job_id]
    again = data.start_next_pending_job_execution(thingName="dev1")
    assert again["execution"]["versionNumber"] == 2  # the IN_PROGRESS one, unchanged


def test_nothing_pending_answers_an_empty_start_and_a_not_found_next(twin: Twin) -> None:
    twin.thing("idle")
    assert twin.plane.jobs_data.start_next_pending_job_execution(thingName="idle") == {}
    error = _error(twin.plane.jobs_data.describe_job_execution, jobId="$next", thingName="idle")
    assert error.code == "ResourceNotFoundException"


def test_describe_next_and_by_id_include_the_document_only_when_asked(twin: Twin, job_id: str) -> None:
    data = twin.plane.jobs_data
    nxt = data.describe_job_execution(jobId="$next", thingName="dev1", includeJobDocument=True)["execution"]
    assert nxt["jobId"] == job_id and "jobDocument" in nxt
    plain = data.describe_job_execution(jobId=job_id, thingName="dev1")["execution"]
    assert "jobDocument" not in plain and plain["status"] == "QUEUED"


def test_expected_version_must_match(twin: Twin, job_id: str) -> None:
    data = twin.plane.jobs_data
    data.update_job_execution(jobId=job_id, thingName="dev1", status="IN_PROGRESS", expectedVersion=1)
    error = _error(
        data.update_job_execution, jobId=job_id, thingName="dev1", status="SUCCEEDED", expectedVersion=1
    )
    assert error.code == "InvalidStateTransitionException" and "VersionMismatch" in error.message
    state = data.update_job_execution(
        jobId=job_id, thingName="dev1", status="SUCCEEDED", expectedVersion=2, includeJobExecutionState=True
    )
    assert state["executionState"]["status"] == "SUCCEEDED" and state["executionState"]["versionNumber"] == 3


def test_a_terminal_execution_takes_no_update(twin: Twin, job_id: str) -> None:
    data = twin.plane.jobs_data
    data.update_job_execution(jobId=job_id, thingName="dev1", status="FAILED")
    error = _error(data.update_job_execution, jobId=job_id, thingName="dev1", status="IN_PROGRESS")
    assert error.code == "InvalidStateTransitionException" and "terminal" in error.message


@pytest.mark.parametrize("status", ["QUEUED", "CANCELED", "TIMED_OUT", "REMOVED", "DONE"])
def test_statuses_a_device_cannot_set_are_refused(twin: Twin, job_id: str, status: str) -> None:
    error = _error(twin.plane.jobs_data.update_job_execution, jobId=job_id, thingName="dev1", status=status)
    assert error.code == "InvalidRequestException"


def test_unknown_job_or_thing_is_not_found(twin: Twin, job_id: str) -> None:
    data = twin.plane.jobs_data
    assert _error(data.update_job_execution, jobId="nope", thingName="dev1", status="SUCCEEDED").code == (
        "ResourceNotFoundException"
    )
    assert _error(data.describe_job_execution, jobId=job_id, thingName="stranger").code == (
        "ResourceNotFoundException"
    )


def test_the_nucleus_failure_details_become_the_effective_deployments_status(twin: Twin, job_id: str) -> None:
    details = {
        "detailed-deployment-status": "FAILED_ROLLBACK_COMPLETE",
        "deployment-failure-cause": "Service com.example.App in broken state after deployment",
        "deployment-error-stack": '["DEPLOYMENT_FAILURE","COMPONENT_UPDATE_ERROR","COMPONENT_BROKEN"]',
        "deployment-error-types": "[USER_COMPONENT_ERROR]",
    }
    twin.plane.jobs_data.start_next_pending_job_execution(thingName="dev1")
    twin.plane.jobs_data.update_job_execution(
        jobId=job_id, thingName="dev1", status="FAILED", statusDetails=details
    )
    effective = twin.gg.list_effective_deployments(coreDeviceThingName="dev1")["effectiveDeployments"][0]
    assert effective["coreDeviceExecutionStatus"] == "FAILED"
    assert effective["statusDetails"] == {
        "errorStack": ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"],
        "errorTypes": ["USER_COMPONENT_ERROR"],
    }
    assert effective["reason"] == (
        "COMPONENT_BROKEN: FAILED_ROLLBACK_COMPLETE: Service com.example.App in broken state after deployment"
    )
    iot_view = twin.plane.iot.describe_job_execution(jobId=job_id, thingName="dev1")["execution"]
    assert iot_view["statusDetails"]["detailsMap"] == details


def test_status_details_over_the_iot_limit_are_refused(twin: Twin, job_id: str) -> None:
    error = _error(
        twin.plane.jobs_data.update_job_execution,
        jobId=job_id,
        thingName="dev1",
        status="IN_PROGRESS",
        statusDetails={"deployment-failure-cause": "x" * 1025},
    )
    assert error.code == "InvalidRequestException" and "deployment-failure-cause" in error.message
