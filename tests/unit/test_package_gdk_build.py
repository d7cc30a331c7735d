"""The model component's gdk custom build hook: packaged output -> greengrass-build/ layout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from model_testkit import variants_dir

from edgeml.model.package import PackageRequest, package

COMPONENT_DIR = Path(__file__).resolve().parents[2] / "components" / "com.edgeml.Model"


def _build(project: Path, package_dir: Path, version: str = "") -> subprocess.CompletedProcess[str]:
    env = {"EDGEML_MODEL_PACKAGE": str(package_dir), "PATH": "/usr/bin:/bin"}
    if version:
        env["EDGEML_MODEL_VERSION"] = version
    return subprocess.run(
        [sys.executable, "build.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_gdk_config_names_the_committed_recipe_component() -> None:
    config = json.loads((COMPONENT_DIR / "gdk-config.json").read_text())
    [name] = config["component"]
    assert config["component"][name]["build"]["build_system"] == "custom"
    recipe = yaml.safe_load((COMPONENT_DIR / "recipe.yaml").read_text())
    assert recipe["ComponentName"] == name


def _project(tmp_path: Path, version: str) -> tuple[Path, str]:
    project = tmp_path / "project"
    shutil.copytree(COMPONENT_DIR, project, symlinks=True, ignore=shutil.ignore_patterns("greengrass-build"))
    (project / "recipe.yaml").unlink()  # the committed link points into the repository's recipes/
    (project / "recipe.yaml").write_text("# what gdk finds in the project\n")
    config = json.loads((project / "gdk-config.json").read_text())
    [name] = config["component"]
    config["component"][name]["version"] = version
    (project / "gdk-config.json").write_text(json.dumps(config))
    return project, name


def _package_two_versions(tmp_path: Path, name: str) -> Path:
    variants, out = variants_dir(tmp_path / "variants"), tmp_path / "packaged"
    model = name.rsplit(".", 1)[-1]
    package(PackageRequest(variants, model, "1.0.0", "models-b", out))
    package(PackageRequest(variants, model, "1.0.1", "models-b", out))
    return out


def test_build_hook_stages_gdk_configs_version_where_gdk_publish_reads_it(tmp_path: Path) -> None:
    project, name = _project(tmp_path, "1.0.0")
    out = _package_two_versions(tmp_path, name)

    result = _build(project, out)
    assert result.returncode == 0, result.stderr
    build = project / "greengrass-build"
    packaged = (out / "recipes" / f"{name}-1.0.0.yaml").read_bytes()
    assert (build / "recipes" / f"{name}-1.0.0.yaml").read_bytes() == packaged
    # gdk component publish reads greengrass-build/recipes/<the project's recipe file name>
    assert (build / "recipes" / "recipe.yaml").read_bytes() == packaged
    staged = sorted((build / "artifacts" / name / "1.0.0").iterdir())
    assert staged and not (build / "artifacts" / name / "1.0.1").exists()
    for path in staged:
        assert path.read_bytes() == (out / "artifacts" / name / "1.0.0" / path.name).read_bytes()
    assert "warning" not in result.stderr


def test_next_patch_stages_the_highest_and_the_environment_overrides(tmp_path: Path) -> None:
    project, name = _project(tmp_path, "NEXT_PATCH")
    out = _package_two_versions(tmp_path, name)
    result = _build(project, out)
    assert result.returncode == 0, result.stderr
    assert (project / "greengrass-build" / "artifacts" / name / "1.0.1").is_dir()
    assert "`gdk component publish` would publish NEXT_PATCH" in result.stderr

    project_fixed, _ = _project(tmp_path / "fixed", "1.0.1")
    result = _build(project_fixed, out, version="1.0.0")
    assert result.returncode == 0, result.stderr
    assert (project_fixed / "greengrass-build" / "artifacts" / name / "1.0.0").is_dir()
    assert f"staged {name} 1.0.0, but gdk-config.json says 1.0.1" in result.stderr


def test_build_hook_refuses_a_tampered_zip(tmp_path: Path) -> None:
    project, name = _project(tmp_path, "1.0.1")
    out = _package_two_versions(tmp_path, name)
    zip_path = next((out / "artifacts" / name / "1.0.1").iterdir())
    with zip_path.open("ab") as handle:
        handle.write(b"tampered")
    result = _build(project, out)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "SHA-256 does not match the recipe's Digest" in result.stderr
    assert not (project / "greengrass-build").exists()


def test_no_prior_package_is_one_line_naming_the_command(tmp_path: Path) -> None:
    project, _ = _project(tmp_path, "1.0.0")
    result = _build(project, tmp_path / "never-packaged")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    expected = f"error: {tmp_path / 'never-packaged'}: no packaged model here; run `edgeml model package"
    assert result.stderr.startswith(expected)


def test_without_edgeml_or_src_it_says_so_in_one_line(tmp_path: Path) -> None:
    # A copy of just the folder run by a python3 that has no edgeml: there is no src/ two folders up.
    project, _ = _project(tmp_path, "1.0.0")
    result = subprocess.run(
        [sys.executable, "-I", "-S", "build.py"],  # -S: no site-packages, so no installed edgeml
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "the model build needs edgeml: run it in the repository checkout" in result.stderr
