"""The control plane's state survives a restart: components, deployments, jobs mid-rollout, device status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from controlplane_kit import REGION, Twin, moto_iot, started_twin

from edgeml.twin.cloud.controlplane import ControlPlane
from edgeml.twin.cloud.controlplane.state import STATE_FILE
from edgeml.twin.cloud.persistence import StateUnreadable

APP = "com.example.App"


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    yield from started_twin(tmp_path, monkeypatch)


def test_everything_is_still_there_after_a_restart(twin: Twin) -> None:
    arn = twin.publish(APP, "1.0.0")
    recipe_before = twin.gg.get_component(arn=arn)["recipe"]
    group = twin.group("fleet")
    for index in range(3):
        twin.thing(f"dev{index}", "fleet")
    created = twin.gg.create_deployment(
        targetArn=group,
        components={APP: {"componentVersion": "1.0.0"}},
        iotJobConfiguration={
            "jobExecutionsRolloutConfig": {"maximumPerMinute": 2},
            "timeoutConfig": {"inProgressTimeoutInMinutes": 10},
        },
        tags={"ring": "0"},
    )
    job_id = created["iotJobId"]
    twin.plane.jobs_data.update_job_execution(
        jobId=job_id, thingName="dev0", status="IN_PROGRESS", statusDetails={"step": "download"}
    )
    twin.plane.jobs_data.update_job_execution(
        jobId=job_id,
        thingName="dev1",
        status="FAILED",
        statusDetails={"deployment-error-stack": "[DEPLOYMENT_FAILURE]"},
    )
    health = {
        "ggcVersion": "2.14.3",
        "platform": "linux",
        "architecture": "amd64",
        "thing": "dev1",
        "overallDeviceStatus": "UNHEALTHY",
        "timestamp": 1767225600000,
        "messageType": "COMPLETE",
        "components": [{"componentName": APP, "version": "1.0.0", "isRoot": True, "status": "BROKEN"}],
    }
    twin.plane.on_iot_publish("$aws/things/dev1/greengrassv2/health/json", json.dumps(health), REGION)
    before = {
        "deployment": twin.gg.get_deployment(deploymentId=created["deploymentId"]),
        "effective": twin.gg.list_effective_deployments(coreDeviceThingName="dev1"),
        "device": twin.gg.get_core_device(coreDeviceThingName="dev1"),
        "installed": twin.gg.list_installed_components(coreDeviceThingName="dev1"),
        "execution": twin.plane.jobs_data.describe_job_execution(jobId=job_id, thingName="dev0"),
        "job": twin.plane.iot.describe_job(jobId=job_id),
    }

    plane = twin.restart()
    assert (twin.state_dir / STATE_FILE).exists()
    assert plane.greengrassv2.get_component(arn=arn)["recipe"] == recipe_before
    assert plane.greengrassv2.get_deployment(deploymentId=created["deploymentId"]) == before["deployment"]
    assert plane.greengrassv2.list_effective_deployments(coreDeviceThingName="dev1") == before["effective"]
    assert plane.greengrassv2.get_core_device(coreDeviceThingName="dev1") == before["device"]
    assert plane.greengrassv2.list_installed_components(coreDeviceThingName="dev1") == before["installed"]
    assert plane.jobs_data.describe_job_execution(jobId=job_id, thingName="dev0") == before["execution"]
    assert plane.iot.describe_job(jobId=job_id) == before["job"]
    assert plane.iot.owns_job(job_id)

    # the rollout and the timer go on where they were
    assert plane.jobs_data.get_pending_job_executions(thingName="dev2")["queuedJobs"] == []
    twin.clock.advance(60)
    assert len(plane.jobs_data.get_pending_job_executions(thingName="dev2")["queuedJobs"]) == 1
    twin.clock.advance(540)
    plane.tick()
    assert (
        plane.jobs_data.describe_job_execution(jobId=job_id, thingName="dev0")["execution"]["status"]
        == "TIMED_OUT"
    )
    with pytest.raises(Exception, match="already exists"):
        plane.greengrassv2.create_component_version(
            inlineRecipe=json.dumps(
                {"RecipeFormatVersion": "2020-01-25", "ComponentName": APP, "ComponentVersion": "1.0.0"}
            ).encode()
        )


def test_a_fresh_directory_starts_empty_and_saving_twice_is_harmless(tmp_path: Path, twin: Twin) -> None:
    plane = ControlPlane(tmp_path / "fresh", twin.clock, moto_iot)
    assert plane.greengrassv2.list_components()["components"] == []
    plane.save()
    plane.save()
    assert (
        ControlPlane(tmp_path / "fresh", twin.clock, moto_iot).greengrassv2.list_deployments()["deployments"]
        == []
    )


@pytest.mark.parametrize("content", ['{"format": 1}', "{not json", '{"format": 2}'])
def test_an_unreadable_state_file_is_one_clear_error(tmp_path: Path, twin: Twin, content: str) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / STATE_FILE).write_text(content)
    with pytest.raises(StateUnreadable, match=STATE_FILE):
        ControlPlane(tmp_path / "bad", twin.clock, moto_iot)
