"""Every recipe in recipes/ against gdk 1.6.2's schema, and what the Runtime/Inference recipes promise."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import semver
import yaml
from edgeml_inference.config import KEYS, AppConfig
from edgeml_runtime.installer import UnsupportedPlatform, detect_platform

from edgeml.components.errors import GdkConfigInvalid, RecipeInvalid
from edgeml.components.gdkconfig import load_gdk_config
from edgeml.components.recipe import Recipe, check_file_size, load_recipe, lower_keys
from edgeml.twin.device.artifacts import ArtifactError, select_manifest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
PROJECTS = sorted(path.parent for path in (ROOT / "components").glob("*/gdk-config.json"))
# The nucleus' architecture names -> what `uname -m` says on such a device (the installer's input).
UNAME_OF_ARCH = {"amd64": "x86_64", "aarch64": "aarch64", "arm": "armv7l"}
THREE = ("com.edgeml.Runtime", "com.edgeml.Inference", "com.edgeml.model.Digits")


def _recipe(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "recipes" / f"{name}.yaml").read_text())
    return data


def _satisfies(version: str, requirement: str) -> bool:
    return all(semver.Version.parse(version).match(clause) for clause in requirement.split())


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_is_valid_for_gdk(path: Path) -> None:
    check_file_size(path)  # gdk's 16000-byte limit, comments included
    recipe = load_recipe(path)
    recipe.validate()  # gdk 1.6.2 recipe schema, keys lower-cased recursively as gdk does
    assert recipe.data["RecipeFormatVersion"] == "2020-01-25"
    assert path.stem == recipe.name, "recipes/<ComponentName>.yaml"
    assert semver.Version.is_valid(recipe.version)
    assert recipe.data.get("ComponentDescription") and recipe.data.get("ComponentPublisher")


def test_recipe_checks_cover_the_runtime_and_inference_recipes() -> None:
    assert {"com.edgeml.Runtime.yaml", "com.edgeml.Inference.yaml"} <= {path.name for path in RECIPES}


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_every_component_folder_is_a_gdk_project_on_its_recipe(project: Path) -> None:
    config = load_gdk_config(project)  # gdk 1.6.2 project schema
    assert config.gdk_version == "1.6.2"
    # gdk reads recipe.yaml in the project folder; it is the one recipe in recipes/.
    assert config.recipe_file == (ROOT / "recipes" / f"{config.component}.yaml").resolve()


def test_schema_violation_names_the_file_and_json_pointer(tmp_path: Path) -> None:
    data = _recipe("com.edgeml.Runtime")
    data["Manifests"][1]["Artifacts"][0]["Unarchive"] = "TAR"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(
        RecipeInvalid, match=rf"^{re.escape(str(path))}: /Manifests/1/Artifacts/0/Unarchive: 'TAR'"
    ):
        load_recipe(path).validate()


def test_keys_are_case_insensitive_like_gdk(tmp_path: Path) -> None:
    data = {
        "recipeFormatVersion": "2020-01-25",
        "componentName": "x.Y",
        "COMPONENTVERSION": "1.0.0",
        "manifests": [],
    }
    Recipe(tmp_path / "r.yaml", data).validate()
    assert lower_keys({"A": [{"B": {"C": 1}}]}) == {"a": [{"b": {"c": 1}}]}
    # The pointer keeps the recipe's own spelling of the keys.
    with pytest.raises(RecipeInvalid, match=r"r\.yaml: /componentName: 'bad name!' does not match"):
        Recipe(tmp_path / "r.yaml", {**data, "componentName": "bad name!"}).validate()


def test_gdk_config_errors_name_file_and_pointer(tmp_path: Path) -> None:
    (tmp_path / "gdk-config.json").write_text(
        '{"component": {"c.X": {"author": "a", "version": "1.0.0", "build": {"build_system": "custom"},'
        ' "publish": {"bucket": "b", "region": "us-east-1"}}}, "gdk_version": "1.6.2"}'
    )
    with pytest.raises(
        GdkConfigInvalid, match=r"gdk-config.json: /component/c.X/build: 'custom_build_command'"
    ):
        load_gdk_config(tmp_path)


@pytest.mark.parametrize("name", ["com.edgeml.Runtime", "com.edgeml.Inference"])
def test_manifests_per_platform_with_gdk_zip_artifacts(name: str) -> None:
    recipe = _recipe(name)
    for manifest in recipe["Manifests"]:
        assert manifest["Platform"]["os"] == "linux"
        [artifact] = manifest["Artifacts"]
        assert artifact["Uri"] == f"s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{name}.zip"
        assert artifact["Unarchive"] == "ZIP"


def test_runtime_install_uses_every_configuration_key() -> None:
    recipe = _recipe("com.edgeml.Runtime")
    keys = set(recipe["ComponentConfiguration"]["DefaultConfiguration"])
    assert keys == {"VenvRoot", "Accelerator", "WheelhouseDir", "InstallTimeoutS"}
    requirements = ROOT / "components" / "com.edgeml.Runtime" / "requirements"
    for manifest in recipe["Manifests"]:
        install = manifest["Lifecycle"]["Install"]
        assert install["RequiresPrivilege"] is False
        for key in keys:
            assert f"{{configuration:/{key}}}" in install["Script"], (manifest["Name"], key)
        platform = detect_platform("Linux", UNAME_OF_ARCH[manifest["Platform"]["architecture"]])
        assert f"--platform {platform}" in install["Script"]
        assert (requirements / f"{platform}.txt").is_file()
        assert (
            recipe["ComponentConfiguration"]["DefaultConfiguration"]["InstallTimeoutS"] < install["Timeout"]
        )


def test_inference_dependencies_are_tight() -> None:
    deps = _recipe("com.edgeml.Inference")["ComponentDependencies"]
    assert {name: dep["DependencyType"] for name, dep in deps.items()} == {
        "com.edgeml.Runtime": "HARD",
        "com.edgeml.model.Digits": "HARD",
        "aws.greengrass.StreamManager": "HARD",
        "aws.greengrass.Nucleus": "SOFT",
    }
    runtime = deps["com.edgeml.Runtime"]["VersionRequirement"]
    assert _satisfies("1.0.7", runtime) and not _satisfies("1.1.0", runtime)
    assert _satisfies(_recipe("com.edgeml.Runtime")["ComponentVersion"], runtime)
    stream_manager = deps["aws.greengrass.StreamManager"]["VersionRequirement"]  # ^2.0.0
    assert _satisfies("2.0.0", stream_manager) and _satisfies("2.3.1", stream_manager)
    assert not _satisfies("3.0.0", stream_manager) and not _satisfies("1.9.9", stream_manager)
    model = deps["com.edgeml.model.Digits"]["VersionRequirement"]
    assert _satisfies(_recipe("com.edgeml.model.Digits")["ComponentVersion"], model)
    assert not _satisfies("2.0.0", model)


def test_inference_configuration_is_what_the_app_parses() -> None:
    defaults = _recipe("com.edgeml.Inference")["ComponentConfiguration"]["DefaultConfiguration"]
    assert set(defaults) - {"accessControl"} == set(KEYS)
    AppConfig.from_mapping(defaults)  # every default passes the app's own validation


def test_access_control_is_exactly_the_topics_the_app_uses() -> None:
    defaults = _recipe("com.edgeml.Inference")["ComponentConfiguration"]["DefaultConfiguration"]
    policies = defaults["accessControl"]
    assert set(policies) == {"aws.greengrass.ipc.pubsub", "aws.greengrass.ipc.mqttproxy"}
    granted: dict[str, set[str]] = {}
    for service in policies.values():
        for policy in service.values():
            for operation in policy["operations"]:
                granted.setdefault(operation, set()).update(policy["resources"])
    assert granted == {
        "aws.greengrass#PublishToTopic": {
            defaults["ResultsTopic"],
            defaults["HealthTopic"],
            defaults["EscalationTopic"],
        },
        "aws.greengrass#SubscribeToTopic": {defaults["InputTopic"]},
        # the thing-name level as an MQTT "+": a stock nucleus leaves {iot:thingName} in accessControl as text
        "aws.greengrass#PublishToIoTCore": {
            defaults[key].replace("{iot:thingName}", "+") for key in ("IoTCoreTopic", "IoTCoreHealthTopic")
        },
    }
    assert defaults["IoTCoreTopic"].startswith("edgeml/{iot:thingName}/")
    assert defaults["IoTCoreHealthTopic"].startswith("edgeml/{iot:thingName}/")


def test_inference_runs_in_the_runtime_venv_on_this_platforms_model() -> None:
    inference = _recipe("com.edgeml.Inference")
    model_manifests = {m["Name"]: m["Platform"] for m in _recipe("com.edgeml.model.Digits")["Manifests"]}
    assert "VenvRoot" in _recipe("com.edgeml.Runtime")["ComponentConfiguration"]["DefaultConfiguration"]
    for manifest in inference["Manifests"]:
        lifecycle = manifest["Lifecycle"]
        run = lifecycle["Run"]
        assert run["RequiresPrivilege"] is False
        assert run["Script"].startswith(
            '"{com.edgeml.Runtime:configuration:/VenvRoot}/bin/python" -m edgeml_inference'
        )
        assert lifecycle["Setenv"]["PYTHONPATH"] == "{artifacts:decompressedPath}/com.edgeml.Inference"
        # The model component unpacks its zip for this platform to <decompressedPath>/<manifest name>.
        name = manifest["Name"]
        assert (
            lifecycle["Setenv"]["MODEL_DIR"]
            == f"{{com.edgeml.model.Digits:artifacts:decompressedPath}}/{name}"
        )
        assert model_manifests[name] == manifest["Platform"]
    assert set(model_manifests) == {m["Name"] for m in inference["Manifests"]}
    # Greengrass takes the first manifest that matches: GPU manifests come before the plain ones.
    names = [m["Name"] for m in inference["Manifests"]]
    assert names.index("linux-amd64-nvidia") < names.index("linux-amd64")


def test_docs_table_lists_every_configuration_key() -> None:
    docs = (ROOT / "docs" / "components.md").read_text()
    for name in ("com.edgeml.Runtime", "com.edgeml.Inference"):
        for key in _recipe(name)["ComponentConfiguration"]["DefaultConfiguration"]:
            assert f"| `{key}` |" in docs, (name, key)


def test_gdk_publishes_the_committed_model_project_as_the_committed_recipe_says() -> None:
    # gdk publish takes gdk-config's version (NEXT_PATCH would be numbered from the cloud).
    model = ROOT / "components" / "com.edgeml.Model"
    config = json.loads((model / "gdk-config.json").read_text())
    [(name, settings)] = config["component"].items()
    assert settings["version"] == yaml.safe_load((model / "recipe.yaml").read_text())["ComponentVersion"]
    assert (model / ".edgeml-project").read_text().strip() == name


@pytest.mark.parametrize("name", ["com.edgeml.Runtime", "com.edgeml.Inference"])
def test_zip_projects_name_their_zip_after_the_component(name: str) -> None:
    config = json.loads((ROOT / "components" / name / "gdk-config.json").read_text())
    assert config["component"][name]["build"]["options"]["zip_name"] == ""


def _selected(name: str, device: dict[str, str]) -> dict[str, Any] | None:
    try:
        return select_manifest(_recipe(name), device)  # first match, as the nucleus picks it
    except ArtifactError:
        return None


def _declared_devices() -> list[dict[str, str]]:
    """Every platform any of the three recipes declares, plus a 32-bit ARM device."""
    platforms = [{"os": "linux", "architecture": "arm"}]
    for name in THREE:
        for manifest in _recipe(name)["Manifests"]:
            if manifest["Platform"] not in platforms:
                platforms.append(dict(manifest["Platform"]))
    return platforms


@pytest.mark.parametrize("device", _declared_devices(), ids=lambda d: "-".join(d.values()))
def test_the_three_recipes_deploy_together_or_not_at_all(device: dict[str, str]) -> None:
    runtime, inference, model = (_selected(name, device) for name in THREE)
    # A platform only one or two of them declare is a deployment that installs and then cannot run.
    assert (runtime is None) == (inference is None) == (model is None), device
    if inference is None:
        # The only platform nobody declares is 32-bit ARM, and the installer refuses it too.
        assert device["architecture"] == "arm"
        with pytest.raises(UnsupportedPlatform, match="32-bit ARM is not supported"):
            detect_platform("Linux", UNAME_OF_ARCH["arm"])
        return
    assert runtime is not None and model is not None
    # The app reads the folder the model component unpacks for the manifest the nucleus picks on this device.
    expected = f"{{com.edgeml.model.Digits:artifacts:decompressedPath}}/{model['Name']}"
    assert inference["Lifecycle"]["Setenv"]["MODEL_DIR"] == expected
    # The Runtime installs this device's requirements (the installer's own uname -m mapping).
    platform = detect_platform("Linux", UNAME_OF_ARCH[device["architecture"]])
    assert f"--platform {platform} " in runtime["Lifecycle"]["Install"]["Script"]
