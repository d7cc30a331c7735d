"""Recipe variables, exactly as NUC componentmanager/KernelConfigResolver.java replaces them.

- same component `{namespace:key}` (SAME_COMPONENT_INTERPOLATION_REGEX), then the cross-component form
  `{component:namespace:key}` (CROSS_COMPONENT_INTERPOLATION_REGEX), which works only for a *direct*
  dependency;
- namespaces: `configuration` (a JSON pointer into the resolved configuration: a value node as its text,
  a container as its JSON, a missing node left as is), `artifacts` (`path`, `decompressedPath`), `work`
  (`path`), `kernel` (`rootPath`), `iot` (`thingName`);
- an unknown namespace or key, or a dependency that is not direct, stays literal (the nucleus only logs);
- configuration values are interpolated only when the nucleus's `interpolateComponentConfiguration` is
  true, and then never with the `configuration` namespace.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edgeml.twin.device.nucleus.configtree import lookup
from edgeml.twin.device.nucleus.paths import NucleusPaths

LOG = logging.getLogger(__name__)
SAME_COMPONENT = re.compile(r"\{([.\w-]+):([^:}]*)}")
CROSS_COMPONENT = re.compile(r"\{([.\w-]+):([.\w-]+):([^:}]*)}")


def as_text(node: Any) -> str:
    """Jackson's JsonNode.asText() for a value node, toString() (sorted keys) for a container."""
    if isinstance(node, bool):
        return "true" if node else "false"
    if node is None:
        return "null"
    if isinstance(node, (dict, list)):
        return json.dumps(node, separators=(",", ":"), sort_keys=True)
    return str(node)


@dataclass(frozen=True)
class ResolvedService:
    version: str
    configuration: Mapping[str, Any]


@dataclass(frozen=True)
class Interpolator:
    paths: NucleusPaths
    thing_name: str
    services: Mapping[str, ResolvedService]  # the resolved kernel services (name -> version, configuration)

    def _system(self, name: str, version: str, namespace: str, key: str) -> str | None:
        table: dict[str, dict[str, Callable[[], str]]] = {
            "artifacts": {
                "path": lambda: str(self.paths.artifact_path(name, version).absolute()),
                "decompressedPath": lambda: str(self.paths.unarchive_path(name, version).absolute()),
            },
            "work": {"path": lambda: str(self.paths.work_path(name).absolute())},
            "kernel": {"rootPath": lambda: str(self.paths.root.absolute())},
            "iot": {"thingName": lambda: self.thing_name},
        }
        found = table.get(namespace, {}).get(key)
        return found() if found is not None else None

    def _configuration(self, component: str, pointer: str) -> str | None:
        service = self.services.get(component)
        if service is None:
            return None
        found, node = lookup(service.configuration, pointer)
        if not found:
            LOG.error(
                "Failed to interpolate configuration due to missing value node at given path {Path=%s}",
                pointer,
            )
            return None
        return as_text(node)

    def replace(
        self, text: str, component: str, dependencies: set[str], *, configuration: bool = True
    ) -> str:
        own = self.services.get(component)
        own_version = own.version if own else ""
        value = text
        for match in SAME_COMPONENT.finditer(text):
            namespace, key = match.group(1), match.group(2)
            if namespace == "configuration":
                replacement = self._configuration(component, key) if configuration else None
            else:
                replacement = self._system(component, own_version, namespace, key)
                if replacement is None and namespace not in ("artifacts", "work", "kernel", "iot"):
                    LOG.error(
                        "Failed to interpolate because of unrecognized namespace for interpolation. "
                        "{interpolation placeholder=%s}",
                        match.group(),
                    )
            if replacement is not None:
                value = value.replace(match.group(), replacement)
        for match in CROSS_COMPONENT.finditer(value):
            target, namespace, key = match.group(1), match.group(2), match.group(3)
            if target not in dependencies:
                LOG.error(
                    "Failed to interpolate because the target component it's not a direct dependency. "
                    "{interpolation text=%s}",
                    match.group(),
                )
                continue
            service = self.services.get(target)
            if service is None:
                continue
            if namespace == "configuration":
                replacement = self._configuration(target, key) if configuration else None
            else:
                replacement = self._system(target, service.version, namespace, key)
            if replacement is not None:
                value = value.replace(match.group(), replacement)
        return value

    def interpolate(
        self, node: Any, component: str, dependencies: set[str], *, configuration: bool = True
    ) -> Any:
        """Strings inside maps (and, for configuration values, lists) interpolated."""
        if isinstance(node, str):
            return self.replace(node, component, dependencies, configuration=configuration)
        if isinstance(node, Mapping):
            return {
                k: self.interpolate(v, component, dependencies, configuration=configuration)
                for k, v in node.items()
            }
        if isinstance(node, list) and not configuration:
            return [self.interpolate(v, component, dependencies, configuration=configuration) for v in node]
        return node
