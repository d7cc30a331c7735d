"""Recipe checks CreateComponentVersion does on an inline recipe, and the recipe's parts the service reads.

Sources: DG component-recipe-reference (RecipeFormatVersion 2020-01-25, semver versions, dependency
types HARD/SOFT, ComponentType values), gdk `MAX_RECIPE_FILE_SIZE_BYTES = 16000` (the 16 kB limit).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import semver
import yaml

from edgeml.twin.cloud.controlplane.errors import validation_error
from edgeml.twin.cloud.controlplane.npmrange import BadRange, parse_range

RECIPE_FORMAT_VERSION = "2020-01-25"
MAX_RECIPE_BYTES = 16000
MAX_VERSION_PART = 999999  # DG: each of major, minor, patch at most 999999
COMPONENT_TYPES = (
    "aws.greengrass.generic",
    "aws.greengrass.lambda",
    "aws.greengrass.plugin",
    "aws.greengrass.nucleus",
)
DEPENDENCY_TYPES = ("HARD", "SOFT")
FIELD = "inlineRecipe"


def _bad(message: str, reason: str = "FIELD_VALIDATION_FAILED") -> Exception:
    return validation_error(message, reason=reason, field_name=FIELD)


def _dates_to_text(value: Any) -> Any:
    """YAML reads an unquoted 2020-01-25 as a date; the service's parser keeps it as text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _dates_to_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates_to_text(v) for v in value]
    return value


def load_recipe(raw: bytes) -> dict[str, Any]:
    """The recipe document from JSON or YAML bytes."""
    if len(raw) > MAX_RECIPE_BYTES:
        raise _bad(f"The recipe is {len(raw)} bytes; the limit is {MAX_RECIPE_BYTES} bytes (16 kB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _bad("The recipe is not UTF-8 text", "CANNOT_PARSE") from error
    document: Any
    try:
        document = json.loads(text)
    except ValueError:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise _bad(
                f"The recipe is neither JSON nor YAML: {str(error).splitlines()[0]}", "CANNOT_PARSE"
            ) from error
    if not isinstance(document, dict):
        raise _bad("The recipe must be a JSON or YAML object", "CANNOT_PARSE")
    loaded: dict[str, Any] = _dates_to_text(document)
    return loaded


def check_version(version: Any) -> str:
    if not isinstance(version, str) or not semver.Version.is_valid(version):
        raise _bad(f"ComponentVersion '{version}' is not a semantic version (major.minor.patch)")
    parsed = semver.Version.parse(version)
    if max(parsed.major, parsed.minor, parsed.patch) > MAX_VERSION_PART:
        raise _bad(f"ComponentVersion '{version}': major, minor and patch are at most {MAX_VERSION_PART}")
    if len(version) > 64:
        raise _bad("ComponentVersion is longer than 64 characters")
    return version


@dataclass(frozen=True)
class Recipe:
    """A checked recipe and the parts of it the service uses."""

    document: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.document["ComponentName"])

    @property
    def version(self) -> str:
        return str(self.document["ComponentVersion"])

    @property
    def description(self) -> str:
        return str(self.document.get("ComponentDescription") or "")

    @property
    def publisher(self) -> str:
        return str(self.document.get("ComponentPublisher") or "")

    def manifests(self) -> list[dict[str, Any]]:
        manifests = self.document.get("Manifests") or []
        return [m for m in manifests if isinstance(m, dict)]

    def artifact_uris(self) -> list[str]:
        uris: list[str] = []
        for manifest in self.manifests():
            for artifact in manifest.get("Artifacts") or []:
                uri = artifact.get("Uri") or artifact.get("URI")
                if isinstance(uri, str) and uri not in uris:
                    uris.append(uri)
        return uris

    def dependencies(self) -> dict[str, dict[str, Any]]:
        deps = self.document.get("ComponentDependencies") or {}
        return {str(k): (v if isinstance(v, dict) else {}) for k, v in deps.items()}

    def platforms(self) -> list[dict[str, Any]]:
        """ComponentPlatform shapes (name, attributes) from the manifests' Platform blocks."""
        platforms = []
        for manifest in self.manifests():
            attributes = {str(k): str(v) for k, v in (manifest.get("Platform") or {}).items()}
            platform: dict[str, Any] = {"attributes": attributes}
            if "os" in attributes:
                platform["name"] = attributes["os"]
            platforms.append(platform)
        return platforms


def _is_attribute(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def check_recipe(document: dict[str, Any]) -> Recipe:
    """The checks the service does on a parsed recipe, each naming the recipe key at fault."""
    if document.get("RecipeFormatVersion") != RECIPE_FORMAT_VERSION:
        raise _bad(
            f"RecipeFormatVersion must be {RECIPE_FORMAT_VERSION}, "
            f"got {document.get('RecipeFormatVersion')!r}"
        )
    name = document.get("ComponentName")
    if not isinstance(name, str) or not name.strip():
        raise _bad("ComponentName is missing")
    if len(name) > 128:
        raise _bad("ComponentName is longer than 128 characters")
    if ":" in name:
        raise _bad(f"ComponentName '{name}' must not contain ':'")
    check_version(document.get("ComponentVersion"))
    for key in ("ComponentDescription", "ComponentPublisher", "ComponentSource"):
        if document.get(key) is not None and not isinstance(document[key], str):
            raise _bad(f"{key} must be a string")
    configuration = document.get("ComponentConfiguration")
    if configuration is not None and not isinstance(configuration, dict):
        raise _bad("ComponentConfiguration must be a map")
    component_type = document.get("ComponentType")
    if component_type is not None and component_type not in COMPONENT_TYPES:
        raise _bad(f"ComponentType '{component_type}' is not one of {', '.join(COMPONENT_TYPES)}")
    dependencies = document.get("ComponentDependencies")
    if dependencies is not None:
        if not isinstance(dependencies, dict):
            raise _bad("ComponentDependencies must be a map of component name to dependency")
        for dep_name, dep in dependencies.items():
            if not isinstance(dep, dict):
                raise _bad(f"ComponentDependencies.{dep_name} must be a map")
            requirement = dep.get("VersionRequirement", "*")
            if not isinstance(requirement, str):
                raise _bad(f"ComponentDependencies.{dep_name}.VersionRequirement must be a string")
            try:
                parse_range(requirement)
            except BadRange as error:
                raise _bad(f"ComponentDependencies.{dep_name}.VersionRequirement: {error}") from error
            kind = dep.get("DependencyType", "HARD")
            if kind not in DEPENDENCY_TYPES:
                raise _bad(f"ComponentDependencies.{dep_name}.DependencyType '{kind}' is not HARD or SOFT")
    manifests = document.get("Manifests")
    if manifests is not None:
        if not isinstance(manifests, list):
            raise _bad("Manifests must be a list")
        for index, manifest in enumerate(manifests):
            if not isinstance(manifest, dict):
                raise _bad(f"Manifests[{index}] must be a map")
            platform = manifest.get("Platform")
            if platform is not None and (
                not isinstance(platform, dict) or not all(_is_attribute(v) for v in platform.values())
            ):
                raise _bad(f"Manifests[{index}].Platform must be a map of attribute names to values")
            artifacts = manifest.get("Artifacts") or []
            if not isinstance(artifacts, list):
                raise _bad(f"Manifests[{index}].Artifacts must be a list")
            for position, artifact in enumerate(artifacts):
                if not isinstance(artifact, dict) or not isinstance(
                    artifact.get("Uri", artifact.get("URI")), str
                ):
                    raise _bad(f"Manifests[{index}].Artifacts[{position}] has no Uri")
    return Recipe(document)


def with_digests(document: dict[str, Any], digests: dict[str, str]) -> dict[str, Any]:
    """The recipe with the service's Digest/Algorithm for each artifact (it replaces what was set)."""
    out: dict[str, Any] = json.loads(json.dumps(document))
    for manifest in out.get("Manifests") or []:
        for artifact in manifest.get("Artifacts") or []:
            uri = artifact.get("Uri") or artifact.get("URI")
            if uri in digests:
                artifact["Digest"] = digests[uri]
                artifact["Algorithm"] = "SHA-256"
    return out


def render(document: dict[str, Any], output_format: str) -> bytes:
    if output_format == "YAML":
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=False).encode("utf-8")
    return json.dumps(document, indent=2).encode("utf-8")


def platform_matches(manifest_platform: dict[str, Any], device: dict[str, str]) -> bool:
    """The nucleus's rule: every key the manifest names must match the device ('*' and /regex/ allowed)."""
    import re

    for key, wanted in manifest_platform.items():
        wanted_text = str(wanted)
        if wanted_text == "*":
            continue
        have = device.get(key)
        if have is None:
            return False
        if len(wanted_text) > 1 and wanted_text.startswith("/") and wanted_text.endswith("/"):
            if not re.fullmatch(wanted_text[1:-1], have):
                return False
        elif wanted_text != have:
            return False
    return True
