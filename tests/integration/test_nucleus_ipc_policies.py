"""Deployment policies that talk to components over IPC, with the unmodified GreengrassCoreIPCClientV2 in the
component's own process (NUC = aws-greengrass-nucleus src/main/java/com/aws/greengrass/)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
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

# A component that defers the first update it hears of, accepts the next, and rejects any configuration
# whose Mode is "bad" (SubscribeToComponentUpdates, DeferComponentUpdate,
# SubscribeToValidateConfigurationUpdates).
CLIENT = b"""
import sys, time
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import ConfigurationValidityReport, ConfigurationValidityStatus

ipc = GreengrassCoreIPCClientV2()
seen = []

def on_update(event):
    if event.pre_update_event is None:
        return
    deployment = event.pre_update_event.deployment_id
    seen.append(deployment)
    wait = 1500 if len(seen) == 1 else 0
    print(f"pre-update {deployment} defer {wait}", flush=True)
    ipc.defer_component_update(deployment_id=deployment, recheck_after_ms=wait, message="busy")

def on_validate(event):
    event = event.validate_configuration_update_event
    ok = event.configuration.get("Mode") != "bad"
    status = ConfigurationValidityStatus.ACCEPTED if ok else ConfigurationValidityStatus.REJECTED
    print(f"validate {event.configuration.get('Mode')} -> {status}", flush=True)
    ipc.send_configuration_validity_report(configuration_validity_report=ConfigurationValidityReport(
        status=status, deployment_id=event.deployment_id, message="Mode must not be bad"))

ipc.subscribe_to_component_updates(on_stream_event=on_update)
ipc.subscribe_to_validate_configuration_updates(on_stream_event=on_validate)
print("subscribed", flush=True)
while True:
    time.sleep(1)
"""


def _client_recipe(name: str, bucket: str) -> dict[str, object]:
    return recipe(
        name,
        "1.0.0",
        {"Run": f"exec {sys.executable} -u {{artifacts:path}}/client.py"},
        configuration={"Mode": "good"},
        artifacts=[{"Uri": f"s3://{bucket}/{name}/client.py"}],
    )


def test_update_system_policy_service_java_defer_component_update_delays_the_deployment(
    tmp_path: Path,
) -> None:
    """NUC lifecyclemanager/UpdateSystemPolicyService.java: NOTIFY_COMPONENTS sends PreComponentUpdateEvent,
    waits the largest recheckAfterMs of the deferrals, and notifies again."""
    name, other, bucket = unique("com.example.Deferring"), unique("com.example.Other"), unique("defer-")
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, _client_recipe(name, bucket), {f"{name}/client.py": CLIENT}, bucket)
        publish(endpoint, recipe(other, "1.0.0", {"Run": "exec sleep 600"}))
        target = thing_arn(endpoint, twin.thing_name)
        assert (
            outcome_of(twin, deploy(endpoint, target, {name: {"componentVersion": "1.0.0"}})).status
            == "SUCCESSFUL"
        )
        wait_log(twin.log_path(name), "stdout. subscribed")
        started = time.monotonic()
        second = deploy(
            endpoint,
            target,
            {name: {"componentVersion": "1.0.0"}, other: {"componentVersion": "1.0.0"}},
            deploymentPolicies={
                "componentUpdatePolicy": {"action": "NOTIFY_COMPONENTS", "timeoutInSeconds": 10}
            },
        )
        assert outcome_of(twin, second).status == "SUCCESSFUL"
        assert time.monotonic() - started >= 1.5
        log = twin.log_path(name).read_text()
        assert f"pre-update {second} defer 1500" in log and f"pre-update {second} defer 0" in log


def test_dynamic_component_configuration_validator_java_rejection_fails_with_no_state_change(
    tmp_path: Path,
) -> None:
    """NUC deployment/DynamicComponentConfigurationValidator.java: same version, changed configuration, a
    subscribed component rejects it: FAILED_NO_STATE_CHANGE, COMPONENT_CONFIGURATION_NOT_VALID."""
    name, bucket = unique("com.example.Validating"), unique("validate-")
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, _client_recipe(name, bucket), {f"{name}/client.py": CLIENT}, bucket)
        target = thing_arn(endpoint, twin.thing_name)
        skip = {"componentUpdatePolicy": {"action": "SKIP_NOTIFY_COMPONENTS"}}
        assert (
            outcome_of(
                twin, deploy(endpoint, target, {name: {"componentVersion": "1.0.0"}}, deploymentPolicies=skip)
            ).status
            == "SUCCESSFUL"
        )
        wait_log(twin.log_path(name), "stdout. subscribed")
        bad = deploy(
            endpoint,
            target,
            {
                name: {
                    "componentVersion": "1.0.0",
                    "configurationUpdate": {"merge": json.dumps({"Mode": "bad"})},
                }
            },
            deploymentPolicies=skip,
        )
        outcome = outcome_of(twin, bad)
        assert outcome.status == "FAILED_NO_STATE_CHANGE"
        assert outcome.message == (
            "Components reported that their to-be-deployed configuration is invalid "
            f"{{ name = {name}, message = Mode must not be bad }}"
        )
        assert "COMPONENT_CONFIGURATION_NOT_VALID" in outcome.status_details()["deployment-error-stack"]
        assert twin.configuration(name) == {"Mode": "good"}
        good = deploy(
            endpoint,
            target,
            {
                name: {
                    "componentVersion": "1.0.0",
                    "configurationUpdate": {"merge": json.dumps({"Mode": "fine"})},
                }
            },
            deploymentPolicies=skip,
        )
        assert outcome_of(twin, good).status == "SUCCESSFUL"
        assert twin.configuration(name) == {"Mode": "fine"}


REPORTER = b"""
import os, time
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

with open("starts.txt", "a") as starts:
    starts.write("start\\n")
ipc = GreengrassCoreIPCClientV2()
if not os.path.exists("reported"):
    open("reported", "w").close()
    ipc.update_state(state="ERRORED")
    print("reported ERRORED, still running", flush=True)
while True:
    time.sleep(1)
"""


def test_lifecycle_java_errored_reported_over_ipc_stops_and_restarts_the_component(tmp_path: Path) -> None:
    """NUC lifecyclemanager/Lifecycle.java: a component reporting ERRORED (IPC UpdateState) is stopped and
    started again, even though its process kept running."""
    name, bucket = unique("com.example.Reporter"), unique("reporter-")
    document = recipe(
        name,
        "1.0.0",
        {"Run": f"exec {sys.executable} -u {{artifacts:path}}/reporter.py"},
        artifacts=[{"Uri": f"s3://{bucket}/{name}/reporter.py"}],
    )
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, document, {f"{name}/reporter.py": REPORTER}, bucket)
        target = thing_arn(endpoint, twin.thing_name)
        assert (
            outcome_of(twin, deploy(endpoint, target, {name: {"componentVersion": "1.0.0"}})).status
            == "SUCCESSFUL"
        )
        starts = twin.paths.work_path(name) / "starts.txt"
        wait_log(twin.log_path(name), "RUNNING -> ERRORED")
        eventually(
            lambda: starts.read_text().count("start") == 2 and twin.states()[name] == "RUNNING",
            "the component to be restarted after its ERRORED report",
        )


SILENT_VALIDATOR = b"""
import time
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

ipc = GreengrassCoreIPCClientV2()
ipc.subscribe_to_validate_configuration_updates(on_stream_event=lambda event: print("asked", flush=True))
print("subscribed", flush=True)
while True:
    time.sleep(1)
"""


def test_dynamic_component_configuration_validator_java_no_answer_in_time_fails_the_deployment(
    tmp_path: Path,
) -> None:
    """NUC deployment/DynamicComponentConfigurationValidator.java treats a TimeoutException as invalid (the
    docs say the deployment proceeds; the code, which the twin follows, fails it with no state change)."""
    name, bucket = unique("com.example.Silent"), unique("silent-")
    document = recipe(
        name,
        "1.0.0",
        {"Run": f"exec {sys.executable} -u {{artifacts:path}}/silent.py"},
        configuration={"Mode": "good"},
        artifacts=[{"Uri": f"s3://{bucket}/{name}/silent.py"}],
    )
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, document, {f"{name}/silent.py": SILENT_VALIDATOR}, bucket)
        target = thing_arn(endpoint, twin.thing_name)
        policies = {
            "componentUpdatePolicy": {"action": "SKIP_NOTIFY_COMPONENTS"},
            "configurationValidationPolicy": {"timeoutInSeconds": 1},
        }
        assert (
            outcome_of(
                twin,
                deploy(endpoint, target, {name: {"componentVersion": "1.0.0"}}, deploymentPolicies=policies),
            ).status
            == "SUCCESSFUL"
        )
        wait_log(twin.log_path(name), "stdout. subscribed")
        change = {
            name: {
                "componentVersion": "1.0.0",
                "configurationUpdate": {"merge": json.dumps({"Mode": "other"})},
            }
        }
        outcome = outcome_of(twin, deploy(endpoint, target, change, deploymentPolicies=policies))
        assert outcome.status == "FAILED_NO_STATE_CHANGE"
        assert "COMPONENT_CONFIGURATION_NOT_VALID" in outcome.status_details()["deployment-error-stack"]
        assert twin.configuration(name) == {"Mode": "good"}
        assert "stdout. asked" in twin.log_path(name).read_text()
