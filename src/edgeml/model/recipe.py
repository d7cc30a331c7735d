"""The model component's recipe: one manifest per platform, each with its artifact zip (S3 URI + digest)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semver
import yaml

from edgeml.errors import EdgemlError
from edgeml.model.targets import Platform

COMPONENT_PREFIX = "com.edgeml.model."
RECIPE_FORMAT_VERSION = "2020-01-25"
NEXT_PATCH = "NEXT_PATCH"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")


class BadComponentName(EdgemlError):
    """--name is not a short alphanumeric model name."""


class BadVersion(EdgemlError):
    """--version is neither a semantic version nor NEXT_PATCH."""


def component_name(name: str) -> str:
    """com.edgeml.model.<Name> for a model name such as "Digits"."""
    if not _NAME.match(name):
        raise BadComponentName(f"--name '{name}': expected letters and digits, starting with a letter")
    return f"{COMPONENT_PREFIX}{name[0].upper()}{name[1:]}"


@dataclass(frozen=True)
class ArtifactRef:
    """One manifest's artifact: where it is published, and its Greengrass digest (base64 SHA-256)."""

    platform: Platform
    uri: str
    digest_b64: str


@dataclass(frozen=True)
class ModelRecipe:
    """A model component version: the same model, one artifact per platform manifest."""

    component: str
    version: str
    description: str
    artifacts: tuple[ArtifactRef, ...]
    publisher: str = "edgeml"

    def to_dict(self) -> dict[str, Any]:
        manifests = []
        for artifact in self.artifacts:
            platform = {"os": artifact.platform.os, "architecture": artifact.platform.architecture}
            if artifact.platform.accelerator != "cpu":
                platform["accelerator"] = artifact.platform.accelerator
            manifests.append(
                {
                    "Name": artifact.platform.slot,
                    "Platform": platform,
                    "Artifacts": [
                        {
                            "Uri": artifact.uri,
                            "Unarchive": "ZIP",
                            "Digest": artifact.digest_b64,
                            "Algorithm": "SHA-256",
                            # ALL: the inference component reads these files and may run as another user.
                            "Permission": {"Read": "ALL", "Execute": "NONE"},
                        }
                    ],
                }
            )
        return {
            "RecipeFormatVersion": RECIPE_FORMAT_VERSION,
            "ComponentName": self.component,
            "ComponentVersion": self.version,
            "ComponentDescription": self.description,
            "ComponentPublisher": self.publisher,
            "Manifests": manifests,
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False, width=1000)


def recipe_version(path: Path) -> str:
    """ComponentVersion of the recipe at `path` (YAML or JSON)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return str(raw["ComponentVersion"])
    except (OSError, yaml.YAMLError, TypeError, KeyError) as error:
        raise BadVersion(f"{path}: cannot read ComponentVersion ({type(error).__name__})") from error


def existing_versions(recipes_dir: Path, component: str) -> list[str]:
    """Versions of `component` found as `<component>-<version>.yaml` in a greengrass-build recipes folder."""
    if not recipes_dir.is_dir():
        return []
    prefix = f"{component}-"
    versions = []
    for path in recipes_dir.glob(f"{component}-*.yaml"):
        candidate = path.stem[len(prefix) :]
        if semver.Version.is_valid(candidate):
            versions.append(candidate)
    return versions


def resolve_version(requested: str, known: list[str]) -> str:
    """`requested` checked as semver, or for NEXT_PATCH the patch after the highest known (1.0.0 if none)."""
    if requested == NEXT_PATCH:
        if not known:
            return "1.0.0"
        return str(max(semver.Version.parse(version) for version in known).bump_patch())
    if not semver.Version.is_valid(requested):
        raise BadVersion(f"--version '{requested}': expected a semantic version like 1.0.0, or {NEXT_PATCH}")
    return requested
