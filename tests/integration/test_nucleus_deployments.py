"""Deployment fidelity of the nucleus twin, one rule per test, each naming its nucleus source
(NUC = aws-greengrass-nucleus src/main/java/com/aws/greengrass/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cloud_twin_harness import client
from nucleus_harness import (
    deploy,
    eventually,
    group_arn,
    job_details,
    one_device,
    outcome_of,
    publish,
    recipe,
    thing_arn,
    unique,
    wait_log,
)

pytestmark = pytest.mark.slow
SLEEP = "exec sleep 600"


def _versions(**pins: str) -> dict[str, Any]:
    return {name: {"componentVersion": version} for name, version in pins.items()}


def _counting(name: str) -> dict[str, Any]:
    """A Run step that appends a line to started.txt in its work folder each time it starts."""
    return {"Run": f"echo start >> started.txt; {SLEEP}"}


def _starts(twin: Any, name: str) -> int:
    path = twin.paths.work_path(name) / "started.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_dependency_resolver_java_conflict_across_two_groups_fails_with_no_state_change(
    tmp_path: Path,
) -> None:
    """NUC componentmanager/DependencyResolver.java + ComponentManager.java: constraints ANDed across groups,
    NoAvailableComponentVersionException text; DeploymentService statusDetails keys."""
    name, first, second = unique("com.example.Pinned"), unique("group-a-"), unique("group-b-")
    with one_device(tmp_path, [first, second]) as (endpoint, twin):
        for version in ("1.0.0", "1.0.1"):
            publish(endpoint, recipe(name, version, {"Run": SLEEP}))
        ok = deploy(endpoint, group_arn(endpoint, first), _versions(**{name: "1.0.0"}))
        assert outcome_of(twin, ok).status == "SUCCESSFUL"
        conflicting = deploy(endpoint, group_arn(endpoint, second), _versions(**{name: "1.0.1"}))
        outcome = outcome_of(twin, conflicting)
        assert outcome.status == "FAILED_NO_STATE_CHANGE"
        assert outcome.message == (
            "No local or cloud component version satisfies the requirements Check whether the version "
            "constraints conflict and that the component exists in your AWS account with a version that "
            "matches the version constraints. If the version constraints conflict, revise deployments to "
            "resolve the conflict. "
            f"Component {name} version constraints: thinggroup/{first} requires =1.0.0, "
            f"thinggroup/{second} requires =1.0.1."
        )
        job = client(endpoint, "greengrassv2").get_deployment(deploymentId=conflicting)["iotJobId"]
        execution = eventually(
            lambda: (e := job_details(endpoint, job, twin.thing_name))["status"] == "FAILED" and e,
            "the job execution to be FAILED",
        )
        details = execution["statusDetails"]["detailsMap"]
        assert details["detailed-deployment-status"] == "FAILED_NO_STATE_CHANGE"
        assert details["deployment-error-stack"] == (
            "[DEPLOYMENT_FAILURE, NO_AVAILABLE_COMPONENT_VERSION, COMPONENT_VERSION_REQUIREMENTS_NOT_MET]"
        )
        assert details["deployment-error-types"] == "[REQUEST_ERROR]"
        assert twin.service(name).spec.version == "1.0.0"  # nothing changed


def test_default_activator_java_a_component_left_out_is_removed_unless_another_group_keeps_it(
    tmp_path: Path,
) -> None:
    """NUC deployment/activator/DefaultActivator.removeObsoleteServices; DG manage-deployments (group X
    deploys A+B, group Y deploys B+C; X redeployed with B only removes A)."""
    a, b, c = (unique(f"com.example.{letter}") for letter in "ABC")
    x, y = unique("group-x-"), unique("group-y-")
    with one_device(tmp_path, [x, y]) as (endpoint, twin):
        for name in (a, b, c):
            publish(endpoint, recipe(name, "1.0.0", {"Run": SLEEP}))
        assert (
            outcome_of(
                twin, deploy(endpoint, group_arn(endpoint, x), _versions(**{a: "1.0.0", b: "1.0.0"}))
            ).status
            == "SUCCESSFUL"
        )
        assert (
            outcome_of(
                twin, deploy(endpoint, group_arn(endpoint, y), _versions(**{b: "1.0.0", c: "1.0.0"}))
            ).status
            == "SUCCESSFUL"
        )
        assert {a, b, c} <= set(twin.states())
        redeployed = deploy(endpoint, group_arn(endpoint, x), _versions(**{b: "1.0.0"}))
        assert outcome_of(twin, redeployed).status == "SUCCESSFUL"
        states = twin.states()
        assert a not in states and states[b] == "RUNNING" and states[c] == "RUNNING"
        assert not twin.paths.recipe_path(a, "1.0.0").exists()  # ComponentManager.cleanupStaleVersions


def test_artifact_downloader_java_digest_mismatch_fails_and_the_old_version_keeps_running(
    tmp_path: Path,
) -> None:
    """NUC componentmanager/builtins/ArtifactDownloader.java: ARTIFACT_CHECKSUM_MISMATCH (gdk #300: an S3
    object overwritten after publishing); a failure before the merge is FAILED_NO_STATE_CHANGE."""
    name, bucket = unique("com.example.Digest"), unique("digest-")
    with one_device(tmp_path) as (endpoint, twin):
        for version in ("1.0.0", "1.0.1"):
            key = f"{name}/{version}/app.sh"
            document = recipe(
                name,
                version,
                {"Run": "sh {artifacts:path}/app.sh"},
                artifacts=[{"Uri": f"s3://{bucket}/{key}"}],
            )
            publish(endpoint, document, {key: f"echo v{version}; {SLEEP}\n".encode()}, bucket)
        first = deploy(endpoint, thing_arn(endpoint, twin.thing_name), _versions(**{name: "1.0.0"}))
        assert outcome_of(twin, first).status == "SUCCESSFUL"
        wait_log(twin.log_path(name), "stdout. v1.0.0")
        process = twin.service(name)._process  # type: ignore[attr-defined]
        client(endpoint, "s3").put_object(Bucket=bucket, Key=f"{name}/1.0.1/app.sh", Body=b"echo tampered\n")
        second = deploy(endpoint, thing_arn(endpoint, twin.thing_name), _versions(**{name: "1.0.1"}))
        outcome = outcome_of(twin, second)
        assert outcome.status == "FAILED_NO_STATE_CHANGE"
        assert "Integrity check for downloaded artifact failed" in outcome.message
        assert "ARTIFACT_CHECKSUM_MISMATCH" in outcome.status_details()["deployment-error-stack"]
        assert twin.service(name).spec.version == "1.0.0"
        assert twin.service(name)._process is process and process.running()  # type: ignore[attr-defined]
        assert not (twin.paths.artifact_path(name, "1.0.1") / "app.sh").exists()


def test_default_activator_java_rollback_restores_the_previous_version_and_configuration(
    tmp_path: Path,
) -> None:
    """NUC deployment/activator/DefaultActivator.java handleFailure: snapshot restored,
    FAILED_ROLLBACK_COMPLETE; DO_NOTHING is FAILED_ROLLBACK_NOT_REQUESTED (reference §1 fact 11)."""
    name = unique("com.example.Roll")
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, recipe(name, "1.0.0", {"Run": SLEEP}, configuration={"Mode": "good"}))
        publish(endpoint, recipe(name, "2.0.0", {"Startup": "exit 1"}, configuration={"Mode": "good"}))
        target = thing_arn(endpoint, twin.thing_name)
        assert outcome_of(twin, deploy(endpoint, target, _versions(**{name: "1.0.0"}))).status == "SUCCESSFUL"
        bad = deploy(
            endpoint,
            target,
            {
                name: {
                    "componentVersion": "2.0.0",
                    "configurationUpdate": {"merge": json.dumps({"Mode": "bad"})},
                }
            },
        )
        assert outcome_of(twin, bad).status == "FAILED_ROLLBACK_COMPLETE"
        eventually(
            lambda: twin.states().get(name) == "RUNNING" and twin.service(name).spec.version == "1.0.0",
            "version 1.0.0 running again",
        )
        assert twin.configuration(name) == {"Mode": "good"}


def test_greengrass_service_java_hard_dependency_update_restarts_dependent_soft_does_not(
    tmp_path: Path,
) -> None:
    """NUC lifecyclemanager/GreengrassService.java: a HARD dependency leaving RUNNING restarts its dependent;
    a SOFT one never does."""
    app, hard, soft = unique("com.example.App"), unique("com.example.Hard"), unique("com.example.Soft")
    with one_device(tmp_path) as (endpoint, twin):
        for version in ("1.0.0", "1.0.1"):
            publish(endpoint, recipe(hard, version, {"Run": SLEEP}))
            publish(endpoint, recipe(soft, version, {"Run": SLEEP}))
        publish(
            endpoint,
            recipe(
                app,
                "1.0.0",
                _counting(app),
                dependencies={hard: (">=1.0.0 <2.0.0", "HARD"), soft: (">=1.0.0 <2.0.0", "SOFT")},
            ),
        )
        target = thing_arn(endpoint, twin.thing_name)
        pins = {app: "1.0.0", hard: "1.0.0", soft: "1.0.0"}
        assert outcome_of(twin, deploy(endpoint, target, _versions(**pins))).status == "SUCCESSFUL"
        eventually(lambda: _starts(twin, app) == 1, "the app's first start")
        assert (
            outcome_of(twin, deploy(endpoint, target, _versions(**{**pins, soft: "1.0.1"}))).status
            == "SUCCESSFUL"
        )
        assert twin.service(soft).spec.version == "1.0.1"
        assert _starts(twin, app) == 1  # SOFT: not restarted
        assert (
            outcome_of(twin, deploy(endpoint, target, _versions(**{**pins, hard: "1.0.1"}))).status
            == "SUCCESSFUL"
        )
        eventually(lambda: _starts(twin, app) == 2, "the app's restart after its HARD dependency's update")


def test_generic_external_service_java_dependents_interpolated_recipe_change_restarts_it(
    tmp_path: Path,
) -> None:
    """NUC lifecyclemanager/GenericExternalService.java: a changed lifecycle restarts the service, so a SOFT
    dependency's update that changes `{dep:artifacts:path}` in the dependent's Run restarts the dependent."""
    app, model = unique("com.example.App"), unique("com.example.Model")
    with one_device(tmp_path) as (endpoint, twin):
        for version in ("1.0.0", "1.0.1"):
            publish(endpoint, recipe(model, version, {}))
        run = {"Run": f"echo {{{model}:artifacts:path}} >> started.txt; {SLEEP}"}
        publish(endpoint, recipe(app, "1.0.0", run, dependencies={model: (">=1.0.0 <2.0.0", "SOFT")}))
        target = thing_arn(endpoint, twin.thing_name)
        assert (
            outcome_of(twin, deploy(endpoint, target, _versions(**{app: "1.0.0", model: "1.0.0"}))).status
            == "SUCCESSFUL"
        )
        eventually(lambda: _starts(twin, app) == 1, "the first start")
        assert (
            outcome_of(twin, deploy(endpoint, target, _versions(**{app: "1.0.0", model: "1.0.1"}))).status
            == "SUCCESSFUL"
        )
        eventually(lambda: _starts(twin, app) == 2, "the restart")
        lines = (twin.paths.work_path(app) / "started.txt").read_text().split()
        assert lines == [str(twin.paths.artifact_path(model, v)) for v in ("1.0.0", "1.0.1")]


def test_kernel_config_resolver_java_reset_then_defaults_then_merge(tmp_path: Path) -> None:
    """NUC componentmanager/KernelConfigResolver.resolveConfigurationToApply: RESET, then the recipe defaults
    at timestamp 1 (never overwriting a value), then MERGE; lists replaced whole; keys case-insensitive."""
    name = unique("com.example.Config")
    defaults_v1 = {"Message": "hello", "List": [1, 2], "Nested": {"A": "a", "B": "b"}}
    defaults_v2 = {"Message": "new default", "List": [1, 2], "Nested": {"A": "a2", "B": "b2"}, "Added": "x"}
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, recipe(name, "1.0.0", {"Run": SLEEP}, configuration=defaults_v1))
        publish(endpoint, recipe(name, "2.0.0", {"Run": SLEEP}, configuration=defaults_v2))
        target = thing_arn(endpoint, twin.thing_name)

        def apply(version: str, **update: Any) -> None:
            spec: dict[str, Any] = {"componentVersion": version}
            if update:
                spec["configurationUpdate"] = {
                    **({"merge": json.dumps(update["merge"])} if "merge" in update else {}),
                    **({"reset": update["reset"]} if "reset" in update else {}),
                }
            assert outcome_of(twin, deploy(endpoint, target, {name: spec})).status == "SUCCESSFUL"

        apply("1.0.0", merge={"message": "merged", "List": [9], "Nested": {"B": "set"}})
        assert twin.configuration(name) == {
            "Message": "merged",
            "List": [9],
            "Nested": {"A": "a", "B": "set"},
        }
        apply("2.0.0")  # the new version's defaults fill only what is missing
        assert twin.configuration(name) == {
            "Message": "merged",
            "List": [9],
            "Nested": {"A": "a", "B": "set"},
            "Added": "x",
        }
        apply("2.0.0", reset=["/Message", "/List/0", "/Nested/B"], merge={"Nested": {"A": "after-reset"}})
        assert twin.configuration(name) == {
            "Message": "new default",
            "List": [9],
            "Nested": {"A": "after-reset", "B": "b2"},
            "Added": "x",
        }
        apply("2.0.0", reset=[""])
        assert twin.configuration(name) == defaults_v2


def test_kernel_config_resolver_java_configuration_interpolated_only_with_interpolate_component_configuration(
    tmp_path: Path,
) -> None:
    """NUC componentmanager/KernelConfigResolver.java: configuration values are interpolated only when
    aws.greengrass.Nucleus has interpolateComponentConfiguration true (2.6+), never `{configuration:...}`."""
    name = unique("com.example.Topic")
    defaults = {"Topic": "things/{iot:thingName}/data", "Self": "{configuration:/Topic}"}
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, recipe(name, "1.0.0", {"Run": SLEEP}, configuration=defaults))
        target = thing_arn(endpoint, twin.thing_name)
        assert outcome_of(twin, deploy(endpoint, target, _versions(**{name: "1.0.0"}))).status == "SUCCESSFUL"
        assert twin.configuration(name) == defaults  # literal on a stock nucleus
        nucleus = {
            "componentVersion": twin.nucleus_version,
            "configurationUpdate": {"merge": json.dumps({"interpolateComponentConfiguration": True})},
        }
        turned_on = deploy(
            endpoint, target, {name: {"componentVersion": "1.0.0"}, "aws.greengrass.Nucleus": nucleus}
        )
        assert outcome_of(twin, turned_on).status == "SUCCESSFUL"
        assert twin.configuration(name) == {
            "Topic": f"things/{twin.thing_name}/data",
            "Self": "{configuration:/Topic}",
        }


def test_deployment_service_java_a_stale_subdeployment_is_rejected(tmp_path: Path) -> None:
    """NUC deployment/DeploymentService.checkIfDeploymentReceivedIsStale: a subdeployment counts as its parent
    group (onBehalfOf); one created before the parent group's latest deployment that the device already
    applied arrives (the device joined the child group later) and is REJECTED, nothing changed."""
    name = unique("com.example.Stale")
    parent_name, child_name = unique("parent-"), unique("child-")
    with one_device(tmp_path, [parent_name]) as (endpoint, twin):
        iot = client(endpoint, "iot")
        parent = group_arn(endpoint, parent_name)
        child = iot.create_thing_group(thingGroupName=child_name)["thingGroupArn"]
        for version in ("1.0.0", "1.0.1"):
            publish(endpoint, recipe(name, version, {"Run": SLEEP}))
        deploy(endpoint, parent, _versions(**{name: "1.0.0"}))
        subdeployment = deploy(endpoint, child, _versions(**{name: "1.0.1"}), parentTargetArn=parent)
        newer = deploy(endpoint, parent, _versions(**{name: "1.0.0"}))
        assert outcome_of(twin, newer).status == "SUCCESSFUL"
        iot.add_thing_to_thing_group(thingGroupName=child_name, thingName=twin.thing_name)
        outcome = outcome_of(twin, subdeployment)
        assert outcome.job_status == "REJECTED"
        assert outcome.message.startswith(
            f"Nucleus has a newer deployment for 'thinggroup/{parent_name}' target"
        )
        job = client(endpoint, "greengrassv2").get_deployment(deploymentId=subdeployment)["iotJobId"]
        execution = eventually(
            lambda: (e := job_details(endpoint, job, twin.thing_name))["status"] == "REJECTED" and e,
            "the job execution to be REJECTED",
        )
        assert execution["statusDetails"]["detailsMap"]["deployment-error-stack"] == (
            "[DEPLOYMENT_REJECTED, REJECTED_STALE_DEPLOYMENT]"
        )
        assert twin.service(name).spec.version == "1.0.0"


def test_platform_helper_java_platform_override_from_the_nucleus_configuration_picks_the_manifest(
    tmp_path: Path,
) -> None:
    """DG greengrass-nucleus-component platformOverride + component-common PlatformHelper: the nucleus's
    platform is os, architecture and platformOverride's keys; the first matching manifest is used."""
    name = unique("com.example.Accel")
    document = recipe(name, "1.0.0", {})
    document["Manifests"] = [
        {"Platform": {"os": "linux", "accelerator": "nvidia"}, "Lifecycle": {"Run": "echo on-gpu"}},
        {"Platform": {"os": "linux"}, "Lifecycle": {"Run": "echo on-cpu"}},
    ]
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, document)
        target = thing_arn(endpoint, twin.thing_name)
        assert outcome_of(twin, deploy(endpoint, target, _versions(**{name: "1.0.0"}))).status == "SUCCESSFUL"
        wait_log(twin.log_path(name), "stdout. on-cpu")
        nucleus = {
            "componentVersion": twin.nucleus_version,
            "configurationUpdate": {"merge": json.dumps({"platformOverride": {"accelerator": "nvidia"}})},
        }
        assert (
            outcome_of(twin, deploy(endpoint, target, {"aws.greengrass.Nucleus": nucleus})).status
            == "SUCCESSFUL"
        )
        again = deploy(
            endpoint,
            target,
            {
                "aws.greengrass.Nucleus": {"componentVersion": twin.nucleus_version},
                name: {"componentVersion": "1.0.0"},
            },
        )
        assert outcome_of(twin, again).status == "SUCCESSFUL"
        wait_log(twin.log_path(name), "stdout. on-gpu")


def test_default_activator_java_a_rollback_that_breaks_too_is_failed_unable_to_rollback(
    tmp_path: Path,
) -> None:
    """NUC deployment/activator/DefaultActivator.java: the restored services are waited for too; one that goes
    BROKEN makes the outcome FAILED_UNABLE_TO_ROLLBACK."""
    name = unique("com.example.NoWayBack")
    old_run = (
        f"if [ -e poisoned ]; then exit 1; fi; {SLEEP}"  # {work:path} is the same folder for every version
    )
    with one_device(tmp_path) as (endpoint, twin):
        publish(endpoint, recipe(name, "1.0.0", {"Run": old_run}))
        publish(endpoint, recipe(name, "2.0.0", {"Install": "touch poisoned", "Startup": "exit 1"}))
        target = thing_arn(endpoint, twin.thing_name)
        assert outcome_of(twin, deploy(endpoint, target, _versions(**{name: "1.0.0"}))).status == "SUCCESSFUL"
        bad = deploy(endpoint, target, _versions(**{name: "2.0.0"}))
        assert outcome_of(twin, bad).status == "FAILED_UNABLE_TO_ROLLBACK"
        service = twin.service(name)
        assert service.spec.version == "1.0.0" and service.state == "BROKEN"
