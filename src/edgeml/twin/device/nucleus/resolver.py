"""Dependency resolution, as NUC componentmanager/DependencyResolver.java and ComponentManager.java do it.

Every group's root components are pinned (`=<version>`, Requirement.buildNPM); dependencies carry the
npm semver ranges written in the recipe; constraints on one component are ANDed across everyone that
names it; a component is resolved with ResolveComponentCandidates (the cloud) and, if the cloud call
fails, with a version already in the component store that satisfies every constraint. When a component's
version changes, the constraints its old version put on others go away. A conflict fails with the
nucleus's NoAvailableComponentVersionException text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from edgeml.twin.cloud.controlplane.npmrange import BadRange, parse_range
from edgeml.twin.device.nucleus.errors import DeploymentError
from edgeml.twin.device.nucleus.recipe import Recipe

VERSION_NOT_FOUND_FAILURE_MESSAGE = "No local or cloud component version satisfies the requirements"
CONFLICT_ADVICE = (
    " Check whether the version constraints conflict and that the component exists in your AWS account "
    "with a version that matches the version constraints. If the version constraints conflict, revise "
    "deployments to resolve the conflict."
)
MAX_ROUNDS = 50


def satisfies(version: str, requirements: Mapping[str, str]) -> bool:
    try:
        return all(parse_range(text).admits(version) for text in requirements.values())
    except BadRange:
        return False


def no_version_error(name: str, requirements: Mapping[str, str]) -> DeploymentError:
    constraints = ", ".join(f"{owner} requires {text}" for owner, text in requirements.items())
    return DeploymentError(
        f"{VERSION_NOT_FOUND_FAILURE_MESSAGE}{CONFLICT_ADVICE} Component {name} version constraints: "
        f"{constraints}.",
        ["NO_AVAILABLE_COMPONENT_VERSION", "COMPONENT_VERSION_REQUIREMENTS_NOT_MET"],
    )


class Resolver:
    def __init__(
        self,
        greengrass: Any,
        platform: Mapping[str, str],
        local_recipes: Callable[[str], list[Recipe]],
    ) -> None:
        self.greengrass = greengrass
        self.platform = dict(platform)
        self.local_recipes = local_recipes

    def _cloud(self, name: str, requirements: Mapping[str, str]) -> Recipe:
        try:
            answer = self.greengrass.resolve_component_candidates(
                platform={"name": "linux", "attributes": self.platform},
                componentCandidates=[{"componentName": name, "versionRequirements": dict(requirements)}],
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("AccessDeniedException", "403"):
                raise DeploymentError(
                    "Access denied when calling ResolveComponentCandidates. Ensure certificate policy grants "
                    "greengrass:ResolveComponentCandidates",
                    ["RESOLVE_COMPONENT_CANDIDATES_ACCESS_DENIED"],
                ) from error
            local = self._local(name, requirements)
            if local is not None:
                return local
            raise no_version_error(name, requirements) from error
        except BotoCoreError as error:  # offline: the store, or the nucleus's offline message
            local = self._local(name, requirements)
            if local is not None:
                return local
            raise DeploymentError(
                "Device is configured to run offline and no local component version satisfies the "
                "requirements.",
                ["NO_AVAILABLE_COMPONENT_VERSION"],
            ) from error
        entry = answer["resolvedComponentVersions"][0]
        raw = entry["recipe"]
        document = json.loads(raw if isinstance(raw, (bytes, str)) else bytes(raw))
        return Recipe(document, str(entry.get("arn", "")))

    def _local(self, name: str, requirements: Mapping[str, str]) -> Recipe | None:
        fitting = [r for r in self.local_recipes(name) if satisfies(r.version, requirements)]
        if not fitting:
            return None
        from semver import Version

        return max(fitting, key=lambda r: Version.parse(r.version))

    def resolve(self, roots: Mapping[str, Mapping[str, str]]) -> dict[str, Recipe]:
        """`roots`: group -> {component: version}. Returns component -> recipe for the whole graph."""
        for components in roots.values():
            for name, version in components.items():
                try:
                    parse_range(f"={version}")
                except BadRange as error:
                    raise DeploymentError(
                        f"Unsupported component version '{version}' for component '{name}'. For pre-release "
                        "versions, please start the version tag with a non-numeric character",
                        ["COMPONENT_VERSION_NOT_VALID"],
                    ) from error
        resolved: dict[str, Recipe] = {}
        for _ in range(MAX_ROUNDS):
            requirements: dict[str, dict[str, str]] = {}
            for group, components in roots.items():
                for name, version in components.items():
                    requirements.setdefault(name, {})[group] = f"={version}"
            for owner, recipe in resolved.items():
                for dependency in recipe.dependencies():
                    requirements.setdefault(dependency.name, {})[owner] = dependency.requirement
            stable = True
            for name in sorted(requirements):
                current = resolved.get(name)
                if current is not None and satisfies(current.version, requirements[name]):
                    continue
                resolved[name] = self._cloud(name, requirements[name])
                stable = False
            for name in [n for n in resolved if n not in requirements]:
                del resolved[name]  # nothing needs it any more (its old dependent changed version)
                stable = False
            if stable:
                self._check_cycles(resolved, roots)
                return resolved
        raise DeploymentError(
            "Dependency resolution did not settle", ["COMPONENT_VERSION_REQUIREMENTS_NOT_MET"]
        )

    @staticmethod
    def _check_cycles(resolved: Mapping[str, Recipe], roots: Mapping[str, Mapping[str, str]]) -> None:
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(name: str) -> None:
            if name in done or name not in resolved:
                return
            if name in visiting:
                raise DeploymentError(
                    f"Circular dependency detected for component {name}",
                    ["COMPONENT_CIRCULAR_DEPENDENCY_ERROR"],
                )
            visiting.add(name)
            for dependency in resolved[name].dependencies():
                visit(dependency.name)
            visiting.discard(name)
            done.add(name)

        for components in roots.values():
            for name in components:
                visit(name)
