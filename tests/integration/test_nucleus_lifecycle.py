"""Lifecycle fidelity of the nucleus twin, one rule per test, each naming its nucleus source
(NUC = aws-greengrass-nucleus src/main/java/com/aws/greengrass/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cloud_twin_harness import client
from nucleus_harness import (
    deploy,
    eventually,
    one_device,
    outcome_of,
    publish,
    recipe,
    thing_arn,
    unique,
    wait_log,
)

pytestmark = pytest.mark.slow


def _deploy_one(endpoint, twin, document, **extra):  # type: ignore[no-untyped-def]
    publish(endpoint, document)
    name, version = document["ComponentName"], document["ComponentVersion"]
    return deploy(
        endpoint, thing_arn(endpoint, twin.thing_name), {name: {"componentVersion": version}}, **extra
    )


def test_lifecycle_java_startup_failing_three_times_goes_broken_and_fails_the_deployment(
    tmp_path: Path,
) -> None:
    """NUC lifecyclemanager/Lifecycle.java MAXIMUM_CONTINUAL_ERROR = 3; DeploymentConfigMerger
    waitForServicesToStart fails on BROKEN; DeploymentErrorCodeUtils stack and types."""
    name = unique("com.example.Crash")
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(
            endpoint,
            twin,
            recipe(name, "1.0.0", {"Startup": "echo starting; exit 3", "Recover": "echo recovering"}),
            deploymentPolicies={"failureHandlingPolicy": "DO_NOTHING"},
        )
        outcome = outcome_of(twin, deployment)
        assert outcome.status == "FAILED_ROLLBACK_NOT_REQUESTED"
        details = outcome.status_details()
        assert details["deployment-failure-cause"] == f"Service {name} in broken state after deployment"
        assert (
            details["deployment-error-stack"]
            == "[DEPLOYMENT_FAILURE, COMPONENT_UPDATE_ERROR, COMPONENT_BROKEN]"
        )
        assert details["deployment-error-types"] == "[USER_COMPONENT_ERROR]"
        assert twin.states()[name] == "BROKEN"
        log = twin.log_path(name).read_text()
        assert log.count("stdout. starting") == 3  # three starts, then BROKEN: no fourth
        assert log.count("stdout. recovering") == 2  # Recover runs on each ERRORED that is not BROKEN


def test_fleet_status_service_java_run_crash_after_start_succeeds_then_broken_reports_unhealthy(
    tmp_path: Path,
) -> None:
    """NUC status/FleetStatusService.java: UNHEALTHY iff a component is BROKEN; a Run component counts as
    started when its process starts (DeploymentConfigMerger), so the deployment SUCCEEDS first."""
    name = unique("com.example.LateCrash")
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(endpoint, twin, recipe(name, "1.0.0", {"Run": "sleep 1; exit 1"}))
        assert outcome_of(twin, deployment).status == "SUCCESSFUL"
        eventually(lambda: twin.states()[name] == "BROKEN", f"{name} to go BROKEN", 30)
        greengrass = client(endpoint, "greengrassv2")
        eventually(
            lambda: greengrass.get_core_device(coreDeviceThingName=twin.thing_name)["status"] == "UNHEALTHY",
            "the core device to be UNHEALTHY",
        )
        installed = greengrass.list_installed_components(coreDeviceThingName=twin.thing_name)
        states = {c["componentName"]: c["lifecycleState"] for c in installed["installedComponents"]}
        assert states[name] == "BROKEN"


def test_fleet_status_service_java_errored_alone_keeps_the_device_healthy(tmp_path: Path) -> None:
    """NUC status/FleetStatusService.getOverallStatusBasedOnServiceState: ERRORED does not count."""
    name = unique("com.example.Flaky")
    script = "if [ -e flag ]; then exec sleep 600; else touch flag; sleep 1; exit 2; fi"
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(endpoint, twin, recipe(name, "1.0.0", {"Run": script}))
        assert outcome_of(twin, deployment).status == "SUCCESSFUL"
        wait_log(twin.log_path(name), "ERRORED")
        eventually(
            lambda: twin.service(name).state == "RUNNING" and twin.service(name)._errors, "the restart"
        )
        greengrass = client(endpoint, "greengrassv2")
        assert greengrass.get_core_device(coreDeviceThingName=twin.thing_name)["status"] == "HEALTHY"


def test_lifecycle_java_startup_timeout_is_errored_with_startup_timeout(tmp_path: Path) -> None:
    """NUC lifecyclemanager/GenericExternalService.java: a step past its Timeout is ERRORED (*_TIMEOUT)."""
    name = unique("com.example.SlowStart")
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(
            endpoint,
            twin,
            recipe(name, "1.0.0", {"Startup": {"Script": "sleep 30", "Timeout": 1}}),
            deploymentPolicies={"failureHandlingPolicy": "DO_NOTHING"},
        )
        assert outcome_of(twin, deployment).status == "FAILED_ROLLBACK_NOT_REQUESTED"
        service = twin.service(name)
        assert service.state == "BROKEN"
        assert service.status_codes == ["STARTUP_TIMEOUT"]


def test_generic_external_service_java_skipif_onpath_and_exists(tmp_path: Path) -> None:
    """NUC lifecyclemanager/GenericExternalService.shouldSkip: `onpath <cmd>`, `exists <path>`, `!`."""
    name = unique("com.example.Skip")
    lifecycle = {
        "Install": {"Skipif": "onpath sh", "Script": "echo install-ran"},
        "Run": {"Skipif": "exists /no/such/file", "Script": "echo run-ran"},
    }
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(endpoint, twin, recipe(name, "1.0.0", lifecycle))
        assert outcome_of(twin, deployment).status == "SUCCESSFUL"
        log = wait_log(twin.log_path(name), "stdout. run-ran")
        assert "install-ran" not in log
        eventually(lambda: twin.states()[name] == "FINISHED", "Run exit 0 to give FINISHED")


def test_generic_external_service_java_skipif_other_text_is_config_not_valid(tmp_path: Path) -> None:
    name = unique("com.example.BadSkip")
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(
            endpoint,
            twin,
            recipe(name, "1.0.0", {"Install": {"Skipif": "sometimes", "Script": "true"}}),
            deploymentPolicies={"failureHandlingPolicy": "DO_NOTHING"},
        )
        outcome_of(twin, deployment)
        assert twin.service(name).status_codes == ["INSTALL_CONFIG_NOT_VALID"]


def test_shell_runner_java_component_environment_and_setenv_merging(tmp_path: Path) -> None:
    """NUC lifecyclemanager/ShellRunner.java + DG component-environment-variables: exactly the nucleus's
    variables; Setenv of the lifecycle then the step (step wins); cwd is {work:path}."""
    name = unique("com.example.Env")
    names = [
        "AWS_IOT_THING_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "SVCUID",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "GGC_VERSION",
        "GG_ROOT_CA_PATH",
        "A",
        "B",
        "STREAM_MANAGER_SERVER_PORT",
        "AWS_ACCESS_KEY_ID",
    ]
    script = "pwd; " + "; ".join(f'echo "{n}=${{{n}-unset}}"' for n in names)
    lifecycle = {
        "Setenv": {"A": "lifecycle", "B": "lifecycle"},
        "Run": {"Script": script, "Setenv": {"B": "step"}},
    }
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(endpoint, twin, recipe(name, "1.0.0", lifecycle))
        assert outcome_of(twin, deployment).status == "SUCCESSFUL"
        log = wait_log(twin.log_path(name), "AWS_ACCESS_KEY_ID=")
        values = dict(re.findall(r"stdout\. ([A-Z_]+)=(.*?)\. \{", log))
        assert values["AWS_IOT_THING_NAME"] == twin.thing_name
        assert values["AWS_REGION"] == values["AWS_DEFAULT_REGION"] == "us-east-1"
        assert values["SVCUID"] == values["AWS_CONTAINER_AUTHORIZATION_TOKEN"] != "unset"
        assert values["GGC_VERSION"] == twin.nucleus_version
        assert values["A"] == "lifecycle" and values["B"] == "step"
        assert values["STREAM_MANAGER_SERVER_PORT"] == "unset"  # a nucleus does not set it
        assert values["AWS_ACCESS_KEY_ID"] == "unset"  # credentials come from the TES URI only
        assert f"stdout. {twin.paths.work_path(name)}" in log


def test_generic_external_service_java_requires_privilege_is_refused_clearly(tmp_path: Path) -> None:
    """DG recipe reference RequiresPrivilege: the twin cannot run a step as root, so the step fails loudly."""
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: RequiresPrivilege can be honoured here")
    name = unique("com.example.Root")
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(
            endpoint,
            twin,
            recipe(name, "1.0.0", {"Install": {"Script": "id", "RequiresPrivilege": True}}),
            deploymentPolicies={"failureHandlingPolicy": "DO_NOTHING"},
        )
        outcome_of(twin, deployment)
        assert "cannot honour RequiresPrivilege: true" in twin.log_path(name).read_text()
        assert twin.states()[name] == "BROKEN"


def test_edgeml_twin_device_status_and_logs_read_a_device_root(tmp_path: Path) -> None:
    """`edgeml twin device status|logs`, run as a user runs it, on the root of a device twin."""
    import subprocess
    import sys

    name = unique("com.example.Talk")
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(
            endpoint, twin, recipe(name, "1.0.0", {"Run": "echo hello-from-talk; exec sleep 600"})
        )
        assert outcome_of(twin, deployment).status == "SUCCESSFUL"
        wait_log(twin.log_path(name), "stdout. hello-from-talk")
        edgeml = [sys.executable, "-c", "from edgeml.cli import main; main()", "twin", "device"]
        status = subprocess.run(
            [*edgeml, "status", "--root", str(twin.paths.root)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        assert any(line.split() == [name, "1.0.0", "RUNNING"] for line in status.stdout.splitlines())
        logs = subprocess.run(
            [*edgeml, "logs", "--root", str(twin.paths.root), name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert logs.returncode == 0 and "stdout. hello-from-talk" in logs.stdout
        missing = subprocess.run(
            [*edgeml, "logs", "--root", str(twin.paths.root), "com.example.Nope"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert missing.returncode == 1
        assert missing.stderr.startswith("error: no log for com.example.Nope on this device")


def test_lifecycle_java_error_count_resets_after_error_reset_time(tmp_path: Path) -> None:
    """NUC lifecyclemanager/Lifecycle.java: errors further apart than `errorResetTime` (a lifecycle key,
    seconds) never add up to BROKEN."""
    name = unique("com.example.Slow")
    lifecycle = {"errorResetTime": 1, "Run": "sleep 1.2; exit 1"}
    with one_device(tmp_path) as (endpoint, twin):
        deployment = _deploy_one(endpoint, twin, recipe(name, "1.0.0", lifecycle))
        assert outcome_of(twin, deployment).status == "SUCCESSFUL"
        eventually(lambda: twin.log_path(name).read_text().count("-> ERRORED") >= 4, "four errors", 30)
        assert "BROKEN" not in twin.log_path(name).read_text()
