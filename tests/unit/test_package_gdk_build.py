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


def _build(project: Path, package_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "build.py"],
        cwd=project,
        env={"EDGEML_MODEL_PACKAGE": str(package_dir), "PATH": "/usr/bin:/bin"},
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


def test_build_hook_stages_the_latest_version_and_refuses_a_tampered_zip(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(COMPONENT_DIR, project, symlinks=True, ignore=shutil.ignore_patterns("greengrass-build"))
    variants, out = variants_dir(tmp_path / "variants"), tmp_path / "packaged"
    name = json.loads((project / "gdk-config.json").read_text())["component"].popitem()[0]
    model = name.rsplit(".", 1)[-1]
    package(PackageRequest(variants, model, "1.0.0", "models-b", out))
    latest = package(PackageRequest(variants, model, "1.0.1", "models-b", out))

    result = _build(project, out)
    assert result.returncode == 0, result.stderr
    build = project / "greengrass-build"
    assert (build / "recipes" / f"{name}-1.0.1.yaml").read_bytes() == latest.recipe_path.read_bytes()
    staged = sorted((build / "artifacts" / name / "1.0.1").iterdir())
    assert [path.name for path in staged] == sorted(item.zip_path.name for item in latest.artifacts)
    for path in staged:
        assert path.read_bytes() == (out / "artifacts" / name / "1.0.1" / path.name).read_bytes()

    with (latest.artifacts[0].zip_path).open("ab") as handle:
        handle.write(b"tampered")
    shutil.rmtree(build)
    result = _build(project, out)
    assert result.returncode == 1
    assert "SHA-256 does not match the recipe's Digest" in result.stderr
    assert not build.exists()
