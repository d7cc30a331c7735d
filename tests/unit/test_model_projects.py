"""Your own model: its gdk projects (`edgeml build --model-package`) and its app bound from the Inference
recipe, with what a nucleus needs (direct dependency, matching manifests) and nothing overwritten."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from model_testkit import variants_dir

from edgeml.components.appbinding import bind_app_recipe, bound_model
from edgeml.components.build import build_project
from edgeml.components.errors import RecipeInvalid
from edgeml.components.gdkconfig import load_gdk_config
from edgeml.components.modelproject import ModelProjectError, write_model_projects
from edgeml.components.recipe import load_recipe
from edgeml.model.package import PackageRequest, package

ROOT = Path(__file__).resolve().parents[2]
MAIN = "from edgeml.cli import main; main()"
TEMPLATE = ROOT / "recipes" / "com.edgeml.Inference.yaml"


def _model_recipe(name: str, version: str, slots: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "Manifests": [
            {
                "Name": slot,
                "Platform": platform,
                "Artifacts": [{"Uri": f"s3://b/{slot}.zip", "Unarchive": "ZIP"}],
            }
            for slot, platform in slots
        ],
    }


AMD64 = ("linux-amd64", {"os": "linux", "architecture": "amd64"})
AARCH64 = ("linux-aarch64", {"os": "linux", "architecture": "aarch64"})


def test_the_app_names_its_own_model_where_the_nucleus_resolves_it() -> None:
    template = load_recipe(TEMPLATE)
    app = bind_app_recipe(template, _model_recipe("com.edgeml.model.Defects", "1.3.0", [AMD64, AARCH64]))
    app.validate()  # gdk 1.6.2's recipe schema
    data = app.data
    assert data["ComponentName"] == "com.edgeml.Inference.Defects"
    dependencies = data["ComponentDependencies"]
    assert (
        dependencies["com.edgeml.model.Defects"]
        == template.data["ComponentDependencies"][bound_model(template)]
    )
    assert list(dependencies) == [
        "com.edgeml.Runtime",
        "com.edgeml.model.Defects",
        "aws.greengrass.StreamManager",
        "aws.greengrass.Nucleus",
    ]
    # Only the model's platforms: on an nvidia amd64 device both components pick linux-amd64.
    assert [m["Name"] for m in data["Manifests"]] == ["linux-amd64", "linux-aarch64"]
    for manifest in data["Manifests"]:
        assert manifest["Lifecycle"]["Setenv"]["MODEL_DIR"] == (
            f"{{com.edgeml.model.Defects:artifacts:decompressedPath}}/{manifest['Name']}"
        )
    assert "Digits" not in yaml.safe_dump(data)
    defaults = data["ComponentConfiguration"]["DefaultConfiguration"]
    assert defaults["HttpPort"] == 0  # a second app on the device must not take the template's port
    assert all(
        name.startswith("com.edgeml.Inference.Defects:")
        for policies in defaults["accessControl"].values()
        for name in policies
    )
    assert load_recipe(TEMPLATE).data == template.data  # the template itself is unchanged


def test_a_model_version_outside_the_metadata_contract_is_refused() -> None:
    with pytest.raises(
        RecipeInvalid, match=r"com.edgeml.model.Defects 2.0.0 is outside the app's model requirement"
    ):
        bind_app_recipe(load_recipe(TEMPLATE), _model_recipe("com.edgeml.model.Defects", "2.0.0", [AMD64]))


def test_a_model_for_no_platform_of_the_app_is_refused() -> None:
    mac = ("darwin-arm64", {"os": "darwin", "architecture": "aarch64"})
    with pytest.raises(RecipeInvalid, match="has no manifest for any platform the app runs on"):
        bind_app_recipe(load_recipe(TEMPLATE), _model_recipe("com.edgeml.model.Defects", "1.0.0", [mac]))


@pytest.fixture()
def components(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes")
    for folder in ("com.edgeml.Inference", "com.edgeml.Model", "com.edgeml.Runtime"):  # the committed ones
        shutil.copytree(
            ROOT / "components" / folder,
            tmp_path / "components" / folder,
            symlinks=True,
            ignore=shutil.ignore_patterns("greengrass-build", "zip-build", "__pycache__"),
        )
    return tmp_path / "components"


def _package(tmp_path: Path, name: str, version: str) -> Path:
    out = tmp_path / f"packaged-{name}"
    package(
        PackageRequest(variants_dir(tmp_path / f"variants-{name}-{version}"), name, version, "models-b", out)
    )
    return out


def test_build_model_package_writes_and_builds_both_projects(components: Path, tmp_path: Path) -> None:
    packaged = _package(tmp_path, "Defects", "1.2.0")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            MAIN,
            "build",
            "--components-dir",
            str(components),
            "--model-package",
            str(packaged),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "built com.edgeml.model.Defects 1.2.0" in result.stdout
    assert "built com.edgeml.Inference.Defects NEXT_PATCH" in result.stdout
    model_config = load_gdk_config(components / "com.edgeml.model.Defects")
    assert model_config.version == "1.2.0"  # gdk publish publishes gdk-config's version: the packaged one
    built = components / "com.edgeml.model.Defects" / "greengrass-build"
    assert sorted(
        p.name for p in (built / "artifacts" / "com.edgeml.model.Defects" / "1.2.0").iterdir()
    ) == sorted(p.name for p in (packaged / "artifacts" / "com.edgeml.model.Defects" / "1.2.0").iterdir())
    app = components / "com.edgeml.Inference.Defects"
    [app_zip] = (
        app / "greengrass-build" / "artifacts" / "com.edgeml.Inference.Defects" / "NEXT_PATCH"
    ).iterdir()
    assert app_zip.name == "com.edgeml.Inference.zip"  # zip_name: the artifact and PYTHONPATH of the template
    assert (
        bound_model(load_recipe(app / "greengrass-build" / "recipes" / "recipe.yaml"))
        == "com.edgeml.model.Defects"
    )


def test_a_new_version_refreshes_the_projects_edgeml_wrote(components: Path, tmp_path: Path) -> None:
    first = write_model_projects(components, _package(tmp_path, "Defects", "1.0.0"))
    packaged = _package(tmp_path, "Defects", "1.1.0")  # same output folder: now holds 1.0.0 and 1.1.0
    second = write_model_projects(components, packaged)
    assert (second.model_project, second.app_project) == (first.model_project, first.app_project)
    assert load_gdk_config(second.model_project).version == "1.1.0"
    assert write_model_projects(components, packaged, "1.0.0").version == "1.0.0"
    assert load_gdk_config(second.model_project).version == "1.0.0"


def test_the_sample_model_refreshes_its_committed_project_and_has_no_extra_app(
    components: Path, tmp_path: Path
) -> None:
    written = write_model_projects(components, _package(tmp_path, "Digits", "1.0.7"))
    assert written.model_project == components / "com.edgeml.Model"
    assert written.app_project == components / "com.edgeml.Inference"
    assert load_gdk_config(written.model_project).version == "1.0.7"
    assert (written.model_project / "recipe.yaml").is_symlink()  # the link to recipes/ is kept
    build_project(written.model_project)


def test_a_folder_edgeml_did_not_write_is_left_untouched(components: Path, tmp_path: Path) -> None:
    mine = components / "com.edgeml.Inference.Defects"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(
        ModelProjectError, match=r"was not written by edgeml for com\.edgeml\.Inference\.Defects"
    ):
        write_model_projects(components, _package(tmp_path, "Defects", "1.0.0"))
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert not (components / "com.edgeml.model.Defects").exists()  # checked before anything is written


def test_no_package_is_one_line(components: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelProjectError, match=r"no packaged model \(run `edgeml model package"):
        write_model_projects(components, tmp_path / "nothing")
    assert json.loads((components / "com.edgeml.Model" / "gdk-config.json").read_text())
