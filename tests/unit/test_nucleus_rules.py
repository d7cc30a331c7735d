"""The nucleus twin's pure rules, each against its nucleus source (NUC = aws-greengrass-nucleus
src/main/java/com/aws/greengrass/; component-common = aws-greengrass-component-common)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeml.twin.device.nucleus.configtree import ConfigMergeError, Topics, resolve_configuration
from edgeml.twin.device.nucleus.deployment import DeploymentTask, DeviceState, Document, Outcome
from edgeml.twin.device.nucleus.errors import error_stack, error_types
from edgeml.twin.device.nucleus.interpolation import Interpolator, ResolvedService
from edgeml.twin.device.nucleus.paths import NucleusPaths
from edgeml.twin.device.nucleus.recipe import Recipe, platform_matches
from edgeml.twin.device.nucleus.resolver import no_version_error
from edgeml.twin.device.nucleus.steps import SkipifNotValid, Step

# -- KernelConfigResolver interpolation ------------------------------------------------------------


def _interpolator(tmp_path: Path) -> Interpolator:
    services = {
        "com.example.App": ResolvedService(
            "1.0.0", {"Port": 8080, "On": True, "Ratio": 0.5, "Tree": {"b": 1, "a": [1]}, "Name": "app"}
        ),
        "com.example.Dep": ResolvedService("2.1.0", {"Root": "/opt/dep"}),
        "com.example.Far": ResolvedService("3.0.0", {"Root": "/far"}),
    }
    return Interpolator(NucleusPaths(tmp_path), "core-1", services)


def test_kernel_config_resolver_java_own_namespaces(tmp_path: Path) -> None:
    i = _interpolator(tmp_path)
    text = "{artifacts:path}|{artifacts:decompressedPath}|{work:path}|{kernel:rootPath}|{iot:thingName}"
    assert i.replace(text, "com.example.App", set()).split("|") == [
        str(tmp_path / "packages/artifacts/com.example.App/1.0.0"),
        str(tmp_path / "packages/artifacts-unarchived/com.example.App/1.0.0"),
        str(tmp_path / "work/com.example.App"),
        str(tmp_path),
        "core-1",
    ]


def test_kernel_config_resolver_java_configuration_values_as_jackson_text(tmp_path: Path) -> None:
    i = _interpolator(tmp_path)
    assert (
        i.replace(
            "{configuration:/Port} {configuration:/On} {configuration:/Ratio}", "com.example.App", set()
        )
        == "8080 true 0.5"
    )
    assert i.replace("{configuration:/Tree}", "com.example.App", set()) == '{"a":[1],"b":1}'  # sorted JSON
    assert i.replace("{configuration:/name}", "com.example.App", set()) == "app"  # keys case-insensitive


def test_kernel_config_resolver_java_unknown_stays_literal(tmp_path: Path) -> None:
    i = _interpolator(tmp_path)
    for text in ("{configuration:/Missing}", "{nothing:here}", "{artifacts:other}", "{iot:thingArn}"):
        assert i.replace(text, "com.example.App", set()) == text


def test_kernel_config_resolver_java_cross_component_only_for_direct_dependencies(tmp_path: Path) -> None:
    i = _interpolator(tmp_path)
    text = (
        "{com.example.Dep:configuration:/Root} {com.example.Dep:artifacts:path} "
        "{com.example.Far:configuration:/Root}"
    )
    dep_path = tmp_path / "packages/artifacts/com.example.Dep/2.1.0"
    assert i.replace(text, "com.example.App", {"com.example.Dep"}) == (
        f"/opt/dep {dep_path} {{com.example.Far:configuration:/Root}}"
    )


def test_kernel_config_resolver_java_configuration_never_interpolates_configuration_namespace(
    tmp_path: Path,
) -> None:
    i = _interpolator(tmp_path)
    value = {"Topic": ["a/{iot:thingName}"], "Self": "{configuration:/Name}"}
    assert i.interpolate(value, "com.example.App", set(), configuration=False) == {
        "Topic": ["a/core-1"],
        "Self": "{configuration:/Name}",
    }


# -- configuration store ---------------------------------------------------------------------------


def test_topics_java_keys_case_insensitive_and_newer_timestamp_wins() -> None:
    tree = Topics.from_dict({"Message": "old"}, 10)
    tree.merge({"message": "older"}, 5)
    assert tree.to_dict() == {"Message": "old"}
    tree.merge({"MESSAGE": "newer"}, 20)
    assert tree.to_dict() == {"Message": "newer"}


def test_kernel_config_resolver_java_order_reset_defaults_merge() -> None:
    running = Topics.from_dict({"A": "set", "B": "set", "L": [3]}, 100)
    resolved = resolve_configuration(
        running,
        {"A": "default", "B": "default", "C": "default", "L": [1, 2]},
        ["/B", "/L/0"],
        {"C": "merged"},
        200,
    )
    assert resolved.to_dict() == {"A": "set", "L": [3], "B": "default", "C": "merged"}
    assert running.to_dict() == {"A": "set", "B": "set", "L": [3]}  # a copy was changed, not the running one
    assert resolve_configuration(running, {"A": "d"}, [""], None, 300).to_dict() == {"A": "d"}


def test_topics_java_merge_cannot_turn_a_container_into_a_leaf() -> None:
    tree = Topics.from_dict({"A": {"B": 1}}, 10)
    with pytest.raises(ConfigMergeError, match="already a container, not a leaf"):
        tree.merge({"A": "leaf"}, 20)


def test_topics_state_round_trip_keeps_labels_and_timestamps() -> None:
    tree = Topics.from_dict({"Key": {"Inner": [1, 2]}}, 42)
    again = Topics.from_state(tree.to_state())
    again.merge({"key": {"inner": "older"}}, 41)
    assert again.to_dict() == {"Key": {"Inner": [1, 2]}}


# -- recipes ---------------------------------------------------------------------------------------


def test_platform_helper_java_exact_wildcard_regex_and_legacy_any() -> None:
    device = {"os": "linux", "architecture": "amd64", "accelerator": "nvidia"}
    assert platform_matches({}, device)
    assert platform_matches({"os": "linux", "architecture": "*"}, device)
    assert platform_matches({"os": "all", "architecture": "/amd.*|x86_64/"}, device)
    assert not platform_matches({"os": "linux", "architecture": "aarch64"}, device)
    assert not platform_matches({"os": "linux", "runtime": "aws_nucleus_lite"}, device)


def test_recipe_first_matching_manifest_and_case_insensitive_keys() -> None:
    recipe = Recipe(
        {
            "componentname": "X",
            "ComponentVersion": "1.0.0",
            "manifests": [
                {"platform": {"os": "windows"}, "lifecycle": {"run": "a"}},
                {"Platform": {"os": "linux"}, "Lifecycle": {"Run": "b"}},
                {"Platform": {"os": "*"}, "Lifecycle": {"Run": "c"}},
            ],
            "ComponentDependencies": {"Y": {"VersionRequirement": "^1.0.0"}, "Z": {"dependencytype": "SOFT"}},
        }
    )
    manifest = recipe.manifest_for({"os": "linux", "architecture": "amd64"})
    assert recipe.lifecycle_for(manifest) == {"Run": "b"}
    assert [(d.name, d.requirement, d.hard) for d in recipe.dependencies()] == [
        ("Y", "^1.0.0", True),
        ("Z", "*", False),
    ]


# -- steps -----------------------------------------------------------------------------------------


def test_lifecycle_java_default_timeouts() -> None:
    lifecycle = {
        "Install": "a",
        "Startup": "b",
        "Run": "c",
        "Shutdown": "d",
        "Recover": "e",
        "Bootstrap": "f",
    }
    timeouts = {name: Step.parse(lifecycle, name).timeout_s for name in lifecycle}  # type: ignore[union-attr]
    assert timeouts == {
        "Install": 120,
        "Startup": 120,
        "Run": None,
        "Shutdown": 15,
        "Recover": 60,
        "Bootstrap": 120,
    }
    assert Step.parse({"Run": {"Script": "x", "Timeout": 5}}, "Run").timeout_s == 5  # type: ignore[union-attr]


def test_generic_external_service_java_skipif(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    present = tmp_path / "present"
    present.touch()
    assert Step("install", "x", 1, f"exists {present}").should_skip(env)
    assert not Step("install", "x", 1, f"!exists {present}").should_skip(env)
    assert Step("install", "x", 1, "onpath sh").should_skip(env)
    assert not Step("install", "x", 1, "onpath no-such-command-here").should_skip(env)
    with pytest.raises(SkipifNotValid):
        Step("install", "x", 1, "when it rains").should_skip(env)


# -- errors and deployment documents ---------------------------------------------------------------


def test_deployment_error_code_utils_java_stack_and_types() -> None:
    codes = ["COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN", "COMPONENT_BROKEN"]
    assert error_stack(codes) == ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"]
    assert error_types(codes, "123456789012") == ["USER_COMPONENT_ERROR"]
    assert error_types(codes, "aws") == ["AWS_COMPONENT_ERROR"]
    assert error_stack(["REJECTED_STALE_DEPLOYMENT"], rejected=True) == [
        "DEPLOYMENT_REJECTED",
        "REJECTED_STALE_DEPLOYMENT",
    ]


def test_component_manager_java_no_available_version_message() -> None:
    error = no_version_error(
        "com.example.HelloWorld", {"LOCAL_DEPLOYMENT": "=1.0.0", "thinggroup/MyGreengrassCoreGroup": "=1.0.1"}
    )
    assert error.message.endswith(  # DG check-deployment-status example
        "Component com.example.HelloWorld version constraints: LOCAL_DEPLOYMENT requires =1.0.0, "
        "thinggroup/MyGreengrassCoreGroup requires =1.0.1."
    )
    assert error.message.startswith("No local or cloud component version satisfies the requirements Check")


def _document(group_arn_resource: str, timestamp: int, **extra: object) -> Document:
    return Document(
        {
            "deploymentId": "d",
            "creationTimestamp": timestamp,
            "components": {},
            "configurationArn": f"arn:aws:greengrass:us-east-1:1:configuration:{group_arn_resource}:3",
            **extra,
        }
    )


def test_deployment_document_group_from_configuration_arn_and_on_behalf_of() -> None:
    assert _document("thinggroup/fleet", 1).group == "thinggroup/fleet"
    assert _document("thing/core-1", 1).group == "thing/core-1"
    sub = _document("thinggroup/canary", 1, onBehalfOf="arn:aws:iot:us-east-1:1:thinggroup/fleet")
    assert sub.group == "thinggroup/fleet"  # a subdeployment counts as its parent group


def test_deployment_service_java_stale_deployment_is_rejected() -> None:
    state = DeviceState(
        group_timestamps={"thinggroup/fleet": 2000}, group_arns={"thinggroup/fleet": "arn:new"}
    )
    task = DeploymentTask.__new__(DeploymentTask)
    task.state = state
    outcome = task.stale(_document("thinggroup/fleet", 1000))
    assert isinstance(outcome, Outcome) and outcome.job_status == "REJECTED"
    assert outcome.message.startswith(
        "Nucleus has a newer deployment for 'thinggroup/fleet' target deployed by "
        "'arn:new'. Rejecting the deployment from 'arn:aws:greengrass:"
    )
    assert (
        outcome.status_details()["deployment-error-stack"]
        == "[DEPLOYMENT_REJECTED, REJECTED_STALE_DEPLOYMENT]"
    )
    assert task.stale(_document("thinggroup/fleet", 2000)) is None
    assert task.stale(_document("thinggroup/other", 1)) is None
