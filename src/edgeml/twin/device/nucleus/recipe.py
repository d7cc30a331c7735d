"""A component recipe as the nucleus reads it: keys case-insensitive (component-common SerializerFactory
ACCEPT_CASE_INSENSITIVE_PROPERTIES), the first manifest whose Platform matches (component-common
PlatformHelper: exact value, `*`, `/regex/`, legacy `all`/`any`), the lifecycle of that manifest (or the
recipe's global Lifecycle), dependencies HARD by default (NUC lifecyclemanager/GreengrassService.java).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgeml.twin.device.nucleus.errors import DeploymentError


def key(mapping: Mapping[str, Any] | None, name: str, default: Any = None) -> Any:
    """`mapping[name]` with the key matched case-insensitively."""
    if not isinstance(mapping, Mapping):
        return default
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    for candidate, value in mapping.items():
        if str(candidate).lower() == lowered:
            return value
    return default


def platform_value_matches(wanted: Any, actual: str | None) -> bool:
    text = str(wanted)
    if text in ("*", "all", "any"):
        return True
    if actual is None:
        return False
    if len(text) > 1 and text.startswith("/") and text.endswith("/"):
        return re.fullmatch(text[1:-1], actual) is not None
    return text == actual


def platform_matches(platform: Mapping[str, Any] | None, device: Mapping[str, str]) -> bool:
    """A missing or empty Platform matches anything; every named attribute must match the device's."""
    if not platform:
        return True
    return all(platform_value_matches(wanted, device.get(str(name))) for name, wanted in platform.items())


@dataclass(frozen=True)
class Dependency:
    name: str
    requirement: str
    hard: bool


@dataclass(frozen=True)
class Recipe:
    document: dict[str, Any]
    arn: str = ""

    @property
    def name(self) -> str:
        return str(key(self.document, "ComponentName"))

    @property
    def version(self) -> str:
        return str(key(self.document, "ComponentVersion"))

    @property
    def component_type(self) -> str:
        return str(key(self.document, "ComponentType") or "aws.greengrass.generic")

    @property
    def owner(self) -> str:
        """The account part of the ARN ("aws" for public components)."""
        parts = self.arn.split(":")
        return parts[4] if len(parts) > 4 else ""

    def dependencies(self) -> list[Dependency]:
        found = []
        for name, properties in (key(self.document, "ComponentDependencies") or {}).items():
            requirement = str(key(properties, "VersionRequirement") or "*")
            kind = str(key(properties, "DependencyType") or "HARD").upper()
            found.append(Dependency(str(name), requirement, kind != "SOFT"))
        return found

    def default_configuration(self) -> dict[str, Any]:
        configuration = key(self.document, "ComponentConfiguration") or {}
        default = key(configuration, "DefaultConfiguration") or {}
        return dict(default) if isinstance(default, Mapping) else {}

    def manifest_for(self, device: Mapping[str, str]) -> dict[str, Any]:
        manifests = key(self.document, "Manifests") or []
        for manifest in manifests:
            if platform_matches(key(manifest, "Platform"), device):
                return dict(manifest)
        raise DeploymentError(
            f"The latest version of Component {self.name} doesn't claim platform "
            f"{', '.join(f'{k} {v}' for k, v in device.items())} compatibility",
            ["NO_AVAILABLE_COMPONENT_VERSION", "COMPONENT_VERSION_REQUIREMENTS_NOT_MET"],
        )

    def lifecycle_for(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        lifecycle = key(manifest, "Lifecycle")
        if lifecycle is None:
            lifecycle = key(self.document, "Lifecycle") or {}
        return dict(lifecycle) if isinstance(lifecycle, Mapping) else {}

    @staticmethod
    def artifacts_of(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(a) for a in key(manifest, "Artifacts") or []]
