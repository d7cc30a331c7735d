"""Your own model end to end, with no hand edits: EfficientNet-Lite0 (224x224 RGB, NCHW, 1000 ImageNet labels)
beside the sample digits model (8x8 grey, 10 labels), through the user's commands:

    edgeml model compile (local, cpu-fp32) -> edgeml model package -> edgeml build --model-package

in a copy of the repository's components/ and recipes/. Both model components and an inference app for each
are built; every built recipe is checked against the recipe schema inside real gdk; then both apps are
installed on one simulated device as the nucleus resolves them (each app's MODEL_DIR interpolated from its
direct model dependency), and each loads its own model and classifies an image with it.

The ONNX file is exported from the registry's EfficientNet-Lite0 weights as the benchmarks do
(build/models, exported once and reused); without those packages the zoo's random stand-in is used.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import yaml
from edgeml_inference.model import load_model

from edgeml.components.recipe import load_recipe
from edgeml.model.zoo.efficientnet import cached_efficientnet_lite0, sample_images
from edgeml.twin.device.artifacts import device_platform, install_artifacts
from edgeml.twin.device.nucleus.interpolation import CROSS_COMPONENT  # KernelConfigResolver's pattern

REPO = Path(__file__).resolve().parents[2]
MAIN = "from edgeml.cli import main; main()"

pytestmark = pytest.mark.slow


def _edgeml(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", MAIN, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"edgeml {' '.join(map(str, args))}: {result.stderr}"
    return result.stdout


def _gdk_validator() -> Any:
    try:
        validator = importlib.import_module("gdk.common.RecipeValidator")
        utils = importlib.import_module("gdk.common.utils")
    except ImportError:
        return None
    return validator.RecipeValidator(utils.get_static_file_path("recipe_schema.json"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's checkout: components/ and recipes/ as committed, src/ beside them, models packaged."""
    root = tmp_path_factory.mktemp("own-model")
    shutil.copytree(REPO / "recipes", root / "recipes")
    for folder in ("com.edgeml.Inference", "com.edgeml.Model", "com.edgeml.Runtime"):
        shutil.copytree(
            REPO / "components" / folder,
            root / "components" / folder,
            symlinks=True,
            ignore=shutil.ignore_patterns("greengrass-build", "zip-build", "__pycache__"),
        )
    (root / "src").symlink_to(REPO / "src", target_is_directory=True)
    source = cached_efficientnet_lite0(REPO / "build" / "models")
    mine = root / "mine"
    shutil.copytree(source.parent, mine)  # model.onnx, labels.json, model-card.json: the user's files
    _edgeml(
        "model", "compile", mine / "model.onnx", "--input-shape", "1,3,224,224", "-t", "cpu-fp32",
        "--out", "build/effnet-variants", cwd=root,
    )  # fmt: skip
    _edgeml(
        "model", "package", "build/effnet-variants", "--name", "EfficientnetLite0", "--version", "1.0.0",
        "--bucket", "edgeml-models", "--out", "build/effnet-model", cwd=root,
    )  # fmt: skip
    _edgeml(
        "model", "compile", REPO / "models" / "digits" / "model.onnx", "--input-shape", "1,1,8,8",
        "--dataset", "digits", "-t", "cpu-fp32", "--out", "build/digits-variants", cwd=root,
    )  # fmt: skip
    _edgeml(
        "model", "package", "build/digits-variants", "--name", "Digits", "--version", "1.0.0",
        "--bucket", "edgeml-models", "--out", "build/model", cwd=root,
    )  # fmt: skip
    _edgeml("build", "--model-package", "build/effnet-model", cwd=root)
    _edgeml("build", "--model-package", "build/model", cwd=root)
    _edgeml("build", "com.edgeml.Runtime", cwd=root)
    return root


# Labels and the input of one sample (layout CHW) each model's metadata gives the app.
EXPECTED = {
    "com.edgeml.model.Digits": (10, (1, 8, 8)),
    "com.edgeml.model.EfficientnetLite0": (1000, (3, 224, 224)),
}
APPS = {
    "com.edgeml.Inference": "com.edgeml.model.Digits",
    "com.edgeml.Inference.EfficientnetLite0": "com.edgeml.model.EfficientnetLite0",
}


def _built(workspace: Path, component: str) -> Path:
    """The recipe a build of `component` left in its project's greengrass-build/recipes/."""
    for path in sorted((workspace / "components").glob("*/greengrass-build/recipes/*")):
        if yaml.safe_load(path.read_text())["ComponentName"] == component:
            return path
    raise AssertionError(f"no built recipe of {component}")


def test_both_models_and_an_app_for_each_are_built_valid_for_gdk(workspace: Path) -> None:
    components = {*APPS, *APPS.values(), "com.edgeml.Runtime"}
    built: dict[str, dict[str, Any]] = {}
    for path in sorted((workspace / "components").glob("*/greengrass-build/recipes/*")):
        recipe = load_recipe(path)
        recipe.validate()  # our copy of gdk's schema
        built.setdefault(recipe.name, recipe.data)
    assert set(built) == components
    validator = _gdk_validator()
    if validator is None:
        pytest.skip("real gdk is not installed: recipes checked against our copy of its schema only")
    for data in built.values():
        validator.validate_recipe(data)


def test_each_app_depends_directly_on_its_own_model_and_shares_the_runtime(workspace: Path) -> None:
    runtime = {}
    for app, model in APPS.items():
        recipe = yaml.safe_load(_built(workspace, app).read_text())
        dependencies = recipe["ComponentDependencies"]
        assert [name for name in dependencies if name.startswith("com.edgeml.model.")] == [model]
        runtime[app] = dependencies["com.edgeml.Runtime"]
        for manifest in recipe["Manifests"]:
            for match in CROSS_COMPONENT.finditer(yaml.safe_dump(manifest["Lifecycle"])):
                assert match.group(1) in dependencies  # the nucleus resolves direct dependencies only
    assert runtime["com.edgeml.Inference"] == runtime["com.edgeml.Inference.EfficientnetLite0"]


def test_both_apps_run_their_own_model_side_by_side_on_one_device(workspace: Path, tmp_path: Path) -> None:
    device = device_platform()
    root = tmp_path / "greengrass"
    installed = {}
    for component in (*APPS, *APPS.values()):
        recipe = _built(workspace, component)
        built_version = str(yaml.safe_load(recipe.read_text())["ComponentVersion"])
        artifacts = recipe.parents[1] / "artifacts" / component / built_version
        # gdk's NEXT_PATCH placeholder installs as 1.0.0, the first version publish would create.
        version = "1.0.0" if built_version == "NEXT_PATCH" else built_version
        installed[component] = install_artifacts(recipe, artifacts, root, device, version)

    http_ports = set()
    for app, model in APPS.items():
        manifest_name = installed[app].manifest
        assert manifest_name == installed[model].manifest  # both picked the same platform manifest
        [lifecycle] = [
            m["Lifecycle"] for m in installed[app].recipe["Manifests"] if m["Name"] == manifest_name
        ]

        def resolve(match: re.Match[str]) -> str:
            component, namespace, key = match.groups()
            assert (namespace, key) == ("artifacts", "decompressedPath")
            return str(installed[component].decompressed_path)

        model_dir = Path(CROSS_COMPONENT.sub(resolve, lifecycle["Setenv"]["MODEL_DIR"]))
        loaded = load_model(model_dir)
        assert loaded.directory.is_relative_to(installed[model].decompressed_path)
        labels, sample_shape = EXPECTED[model]
        assert (len(loaded.metadata.labels), tuple(loaded.preprocess.sample_shape)) == (labels, sample_shape)
        image = io.BytesIO()
        sample_images()[0].convert("RGB").save(image, format="PNG")
        batch = loaded.preprocess(image.getvalue())[np.newaxis]
        scores = loaded.backend.run(batch)
        assert scores.shape == (1, len(loaded.metadata.labels))
        loaded.close()
        http_ports.add(installed[app].recipe["ComponentConfiguration"]["DefaultConfiguration"]["HttpPort"])
    assert len(http_ports) == 2  # the two apps do not both bind the template's port


def test_your_model_and_its_app_publish_with_the_runtime(workspace: Path, tmp_path: Path) -> None:
    endpoint_module = importlib.import_module("edgeml.twin.cloud.endpoint")
    motoserver = importlib.import_module("edgeml.twin.cloud.motoserver")
    twin = endpoint_module.CloudEndpoint(tmp_path / "twin", persist_moto=False).start()
    env = {**motoserver.TWIN_CREDENTIALS, "AWS_ENDPOINT_URL": twin.endpoint_url}
    try:
        with motoserver.pointed_at(env):
            out = _edgeml(
                "publish", "com.edgeml.Runtime", "com.edgeml.model.EfficientnetLite0",
                "com.edgeml.Inference.EfficientnetLite0", "--bucket", "own-model-artifacts", cwd=workspace,
            )  # fmt: skip
            greengrass = boto3.client("greengrassv2")
            arns = re.findall(r"^published \S+ \S+ \(\w+\): (\S+)$", out, flags=re.MULTILINE)
            assert len(arns) == 3, out
            published = {greengrass.describe_component(arn=arn)["componentName"]: arn for arn in arns}
            assert set(published) == {
                "com.edgeml.Runtime",
                "com.edgeml.model.EfficientnetLite0",
                "com.edgeml.Inference.EfficientnetLite0",
            }
            assert published["com.edgeml.model.EfficientnetLite0"].endswith(":versions:1.0.0")  # as packaged
    finally:
        twin.stop()
