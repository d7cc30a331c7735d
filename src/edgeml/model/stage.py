"""Stages a packaged model component version into gdk's `greengrass-build/` layout.

`edgeml model package --out DIR` already writes that layout (recipes/ + artifacts/<Name>/<version>/);
this picks one version out of DIR, checks every zip against the recipe's SHA-256 digest, and places it
in a gdk project's greengrass-build folder. The gdk custom build hook of components/com.edgeml.Model
calls it; it needs only the standard library and PyYAML.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from edgeml.errors import EdgemlError
from edgeml.model.staging import staged_output

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class StageError(EdgemlError):
    """No packaged version to stage, or an artifact that does not match its recipe digest."""


@dataclass(frozen=True)
class StagedComponent:
    """What landed in greengrass-build."""

    component: str
    version: str
    recipe: Path
    artifacts: tuple[Path, ...]


def _latest(package_dir: Path, component: str) -> str:
    versions = []
    for path in (package_dir / "recipes").glob(f"{component}-*.yaml"):
        match = _VERSION.match(path.stem[len(component) + 1 :])
        if match:
            versions.append(tuple(int(part) for part in match.groups()))
    if not versions:
        raise StageError(
            f"{package_dir}: no packaged {component} (run `edgeml model package --out {package_dir}`)"
        )
    return ".".join(str(part) for part in max(versions))


def stage_component(
    package_dir: Path, component: str, build_dir: Path, version: str | None = None
) -> StagedComponent:
    """Copies `component` `version` (default: the highest) from `package_dir` into `build_dir` (replaced)."""
    version = version or _latest(package_dir, component)
    recipe_path = package_dir / "recipes" / f"{component}-{version}.yaml"
    if not recipe_path.is_file():
        raise StageError(f"{recipe_path}: no such packaged recipe")
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    artifact_dir = package_dir / "artifacts" / component / version
    with staged_output(build_dir, merge=False) as stage:
        target_dir = stage / "artifacts" / component / version
        target_dir.mkdir(parents=True)
        (stage / "recipes").mkdir()
        staged = []
        for manifest in recipe.get("Manifests", []):
            for artifact in manifest.get("Artifacts", []):
                name = str(artifact["Uri"]).rsplit("/", 1)[-1]
                source = artifact_dir / name
                if not source.is_file():
                    raise StageError(f"{source}: artifact named in {recipe_path.name} is missing")
                digest = base64.b64encode(hashlib.sha256(source.read_bytes()).digest()).decode("ascii")
                if digest != artifact.get("Digest"):
                    raise StageError(f"{source}: SHA-256 does not match the recipe's Digest (re-run package)")
                shutil.copyfile(source, target_dir / name)
                staged.append(build_dir / "artifacts" / component / version / name)
        shutil.copyfile(recipe_path, stage / "recipes" / recipe_path.name)
    return StagedComponent(component, version, build_dir / "recipes" / recipe_path.name, tuple(staged))
