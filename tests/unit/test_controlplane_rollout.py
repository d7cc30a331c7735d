"""IoT Jobs rollout, abort and timeout of a deployment's job, on a ManualClock (an hour in a second)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from controlplane_kit import Twin, started_twin

APP = "com.example.App"


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    yield from started_twin(tmp_path, monkeypatch)


def _fleet(twin: Twin, size: int) -> str:
    twin.publish(APP, "1.0.0", artifact=None)
    group = twin.group("fleet")
    for index in range(size):
        twin.thing(f"dev{index:03d}", "fleet")
    return group


def _deploy(twin: Twin, group: str, configuration: dict[str, Any]) -> str:
    created = twin.gg.create_deployment(
        targetArn=group, components={APP: {"componentVersion": "1.0.0"}}, iotJobConfiguration=configuration
    )
    return str(created["iotJobId"])


def _notified(twin: Twin, job_id: str) -> int:
    twin.plane.tick()
    details = twin.plane.iot.describe_job(jobId=job_id)["job"]["jobProcessDetails"]
    return sum(details.values())  # every notified thing has an execution in some state


def _report(twin: Twin, job_id: str, things: list[str], status: str) -> None:
    for thing in things:
        twin.plane.jobs_data.update_job_execution(jobId=job_id, thingName=thing, status="IN_PROGRESS")
        if status != "IN_PROGRESS":
            twin.plane.jobs_data.update_job_execution(jobId=job_id, thingName=thing, status=status)


def _queued_things(twin: Twin, job_id: str) -> list[str]:
    listed = twin.plane.iot.list_job_executions_for_job(jobId=job_id, status="QUEUED", maxResults=250)
    return [s["thingArn"].rsplit("/", 1)[1] for s in listed["executionSummaries"]]


def test_maximum_per_minute_releases_that_many_things_each_minute(twin: Twin) -> None:
    job_id = _deploy(twin, _fleet(twin, 35), {"jobExecutionsRolloutConfig": {"maximumPerMinute": 10}})
    counts = [_notified(twin, job_id)]
    for _ in range(4):
        twin.clock.advance(60)
        counts.append(_notified(twin, job_id))
    assert counts == [10, 20, 30, 35, 35]


def test_a_thing_not_yet_reached_by_the_rollout_sees_no_job(twin: Twin) -> None:
    job_id = _deploy(twin, _fleet(twin, 3), {"jobExecutionsRolloutConfig": {"maximumPerMinute": 1}})
    assert [
        j["jobId"] for j in twin.plane.jobs_data.get_pending_job_executions(thingName="dev000")["queuedJobs"]
    ] == [job_id]
    assert twin.plane.jobs_data.get_pending_job_executions(thingName="dev002")["queuedJobs"] == []
    twin.clock.advance(120)
    assert len(twin.plane.jobs_data.get_pending_job_executions(thingName="dev002")["queuedJobs"]) == 1


def test_exponential_rate_grows_by_the_factor_at_each_notified_threshold(twin: Twin) -> None:
    # IOTDG: thresholds are cumulative (10, 20, 30, ...); the rate is raised at most once a minute
    rollout = {
        "exponentialRate": {
            "baseRatePerMinute": 5,
            "incrementFactor": 2,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 10},
        }
    }
    job_id = _deploy(twin, _fleet(twin, 100), {"jobExecutionsRolloutConfig": rollout})
    counts = [_notified(twin, job_id)]
    for _ in range(4):
        twin.clock.advance(60)
        counts.append(_notified(twin, job_id))
    assert counts == [5, 10, 20, 40, 80]


def test_exponential_rate_is_capped_by_maximum_per_minute(twin: Twin) -> None:
    rollout = {
        "maximumPerMinute": 8,
        "exponentialRate": {
            "baseRatePerMinute": 5,
            "incrementFactor": 3,
            "rateIncreaseCriteria": {"numberOfNotifiedThings": 5},
        },
    }
    job_id = _deploy(twin, _fleet(twin, 40), {"jobExecutionsRolloutConfig": rollout})
    counts = [_notified(twin, job_id)]
    for _ in range(3):
        twin.clock.advance(60)
        counts.append(_notified(twin, job_id))
    assert counts == [5, 13, 21, 29]


def test_succeeded_threshold_raises_the_rate(twin: Twin) -> None:
    rollout = {
        "exponentialRate": {
            "baseRatePerMinute": 2,
            "incrementFactor": 2,
            "rateIncreaseCriteria": {"numberOfSucceededThings": 2},
        }
    }
    job_id = _deploy(twin, _fleet(twin, 20), {"jobExecutionsRolloutConfig": rollout})
    twin.clock.advance(60)
    assert _notified(twin, job_id) == 4  # nobody succeeded: still 2 a minute
    _report(twin, job_id, _queued_things(twin, job_id)[:2], "SUCCEEDED")
    twin.clock.advance(60)
    assert _notified(twin, job_id) == 8


def test_abort_cancels_the_job_and_only_its_queued_executions(twin: Twin) -> None:
    abort = {
        "criteriaList": [
            {
                "failureType": "FAILED",
                "action": "CANCEL",
                "thresholdPercentage": 50,
                "minNumberOfExecutedThings": 4,
            }
        ]
    }
    job_id = _deploy(twin, _fleet(twin, 10), {"abortConfig": abort})
    things = _queued_things(twin, job_id)
    _report(twin, job_id, things[:2], "SUCCEEDED")
    _report(twin, job_id, things[2:3], "FAILED")
    _report(twin, job_id, things[3:4], "IN_PROGRESS")
    assert (
        twin.plane.iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
    )  # 3 executed: below min
    _report(twin, job_id, things[4:5], "FAILED")  # 4 executed, 2 failed: 50 %
    job = twin.plane.iot.describe_job(jobId=job_id)["job"]
    assert job["status"] == "CANCELED" and job["forceCanceled"] is False
    details = job["jobProcessDetails"]
    assert (details["numberOfInProgressThings"], details["numberOfCanceledThings"]) == (1, 5)
    twin.thing("newcomer", "fleet")
    assert twin.plane.jobs_data.get_pending_job_executions(thingName="newcomer")["queuedJobs"] == []


def test_abort_counts_the_failure_type_it_names(twin: Twin) -> None:
    abort = {
        "criteriaList": [
            {
                "failureType": "REJECTED",
                "action": "CANCEL",
                "thresholdPercentage": 10,
                "minNumberOfExecutedThings": 1,
            }
        ]
    }
    job_id = _deploy(twin, _fleet(twin, 4), {"abortConfig": abort})
    things = _queued_things(twin, job_id)
    _report(twin, job_id, things[:1], "FAILED")
    assert twin.plane.iot.describe_job(jobId=job_id)["job"]["status"] == "IN_PROGRESS"
    twin.plane.jobs_data.update_job_execution(jobId=job_id, thingName=things[1], status="REJECTED")
    assert twin.plane.iot.describe_job(jobId=job_id)["job"]["status"] == "CANCELED"


def test_in_progress_timeout_times_the_execution_out(twin: Twin) -> None:
    job_id = _deploy(twin, _fleet(twin, 1), {"timeoutConfig": {"inProgressTimeoutInMinutes": 5}})
    twin.plane.jobs_data.start_next_pending_job_execution(thingName="dev000")
    twin.clock.advance(299)
    execution = twin.plane.jobs_data.describe_job_execution(jobId=job_id, thingName="dev000")["execution"]
    assert (execution["status"], execution["approximateSecondsBeforeTimedOut"]) == ("IN_PROGRESS", 1)
    twin.clock.advance(1)
    twin.plane.tick()
    assert twin.plane.jobs_data.describe_job_execution(jobId=job_id, thingName="dev000")["execution"][
        "status"
    ] == ("TIMED_OUT")
    effective = twin.gg.list_effective_deployments(coreDeviceThingName="dev000")["effectiveDeployments"][0]
    assert effective["coreDeviceExecutionStatus"] == "TIMED_OUT"
    with pytest.raises(Exception, match="terminal"):
        twin.plane.jobs_data.update_job_execution(jobId=job_id, thingName="dev000", status="SUCCEEDED")


def test_queued_executions_do_not_time_out(twin: Twin) -> None:
    job_id = _deploy(twin, _fleet(twin, 1), {"timeoutConfig": {"inProgressTimeoutInMinutes": 1}})
    twin.clock.advance(3600)
    twin.plane.tick()
    assert twin.plane.jobs_data.describe_job_execution(jobId=job_id, thingName="dev000")["execution"][
        "status"
    ] == ("QUEUED")


def test_step_timeout_from_the_device_applies_too(twin: Twin) -> None:
    job_id = _deploy(twin, _fleet(twin, 1), {"timeoutConfig": {"inProgressTimeoutInMinutes": 60}})
    twin.plane.jobs_data.start_next_pending_job_execution(thingName="dev000", stepTimeoutInMinutes=2)
    twin.clock.advance(121)
    twin.plane.tick()
    assert twin.plane.jobs_data.describe_job_execution(jobId=job_id, thingName="dev000")["execution"][
        "status"
    ] == ("TIMED_OUT")
