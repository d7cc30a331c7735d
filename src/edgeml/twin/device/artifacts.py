"""The old direct-install harness (the demo's until it deploys through the control plane; the nucleus twin,
`edgeml.twin.device.nucleus`, replaces it and owns the rules used here).

What the nucleus does with a component version's artifacts: pick the manifest for the device's
platform, verify each artifact against the recipe's digest, and unarchive ZIPs.

Layout, as on a core device (`<root>` = the Greengrass root):
  <root>/packages/artifacts/<Component>/<version>/<file>
  <root>/packages/artifacts-unarchived/<Component>/<version>/<zip name without .zip>/
so `{artifacts:path}` and `{artifacts:decompressedPath}` resolve to the two `<version>` folders.
"""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgeml.errors import EdgemlError
from edgeml.twin.device.nucleus.device import device_platform as nucleus_device_platform
from edgeml.twin.device.nucleus.recipe import platform_matches
from edgeml.twin.device.nucleus.store import digest_of


class ArtifactError(EdgemlError):
    """A recipe's artifacts cannot be installed on this device (no manifest, missing file, bad digest)."""


def device_platform(**attributes: str) -> dict[str, str]:
    """This machine as the nucleus describes it (`os`, `architecture`), plus extra attributes."""
    return nucleus_device_platform(**attributes)


def manifest_matches(manifest_platform: Mapping[str, Any], device: Mapping[str, str]) -> bool:
    """The nucleus twin's rule (exact, `*`, `/regex/`, legacy `all`/`any`)."""
    return platform_matches(manifest_platform, device)


def select_manifest(recipe: Mapping[str, Any], device: Mapping[str, str]) -> dict[str, Any]:
    """The first manifest whose platform matches the device, as the nucleus picks it."""
    for manifest in recipe.get("Manifests") or []:
        if manifest_matches(manifest.get("Platform") or {}, device):
            return dict(manifest)
    component = f"{recipe.get('ComponentName')} {recipe.get('ComponentVersion')}"
    raise ArtifactError(f"{component}: no manifest for platform {dict(device)}")


@dataclass(frozen=True)
class InstalledArtifacts:
    """Where one component version's artifacts landed on the device."""

    component: str
    version: str
    manifest: str
    path: Path  # {artifacts:path}
    decompressed_path: Path  # {artifacts:decompressedPath}
    recipe: dict[str, Any]  # as read from the recipe file


def _verify_digest(path: Path, artifact: Mapping[str, Any]) -> None:
    digest = artifact.get("Digest")
    if not digest:
        return  # gdk's zip build leaves digests to CreateComponentVersion; the nucleus then has one
    actual = digest_of(path, str(artifact.get("Algorithm", "SHA-256")))
    if actual != digest:
        raise ArtifactError(f"{path.name}: {artifact.get('Algorithm')} digest {actual} != recipe's {digest}")


def install_artifacts(
    recipe_file: Path, artifacts_dir: Path, root: Path, device: Mapping[str, str], version: str | None = None
) -> InstalledArtifacts:
    """Copies the matching manifest's artifacts from `artifacts_dir` into `root`, verified and unarchived.

    `version` names the installed version when the recipe's own is a placeholder (gdk's NEXT_PATCH).
    """
    recipe = yaml.safe_load(recipe_file.read_text(encoding="utf-8"))
    component = str(recipe["ComponentName"])
    version = version or str(recipe["ComponentVersion"])
    manifest = select_manifest(recipe, device)
    path = root / "packages" / "artifacts" / component / version
    decompressed = root / "packages" / "artifacts-unarchived" / component / version
    path.mkdir(parents=True, exist_ok=True)
    decompressed.mkdir(parents=True, exist_ok=True)
    for artifact in manifest.get("Artifacts") or []:
        name = str(artifact["Uri"]).rsplit("/", 1)[-1]
        source = artifacts_dir / name
        if not source.is_file():
            raise ArtifactError(f"{source}: artifact named in {recipe_file.name} is missing")
        _verify_digest(source, artifact)
        shutil.copyfile(source, path / name)
        if str(artifact.get("Unarchive", "NONE")).upper() == "ZIP":
            target = decompressed / name.removesuffix(".zip")
            shutil.rmtree(target, ignore_errors=True)
            with zipfile.ZipFile(source) as archive:
                archive.extractall(target)
    return InstalledArtifacts(component, version, str(manifest.get("Name", "")), path, decompressed, recipe)
