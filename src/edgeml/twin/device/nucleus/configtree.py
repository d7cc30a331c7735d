"""The nucleus's configuration store for one component: a tree of timestamped leaves.

NUC config/Topics.java (keys are CaseInsensitiveString), config/Topic.java (a leaf keeps its modtime; a
merge with an older timestamp does not replace it), componentmanager/KernelConfigResolver.java
(resolveConfigurationToApply: copy the running config, remove the RESET paths (`""` = the whole
document; a pointer to an array element is ignored with an error log), merge the recipe's
DefaultConfiguration with timestamp 1 so it never overwrites a value, then merge the MERGE document
with the deployment's timestamp). Lists are leaves: a merge replaces them whole.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)
DEFAULT_TIMESTAMP = 1


class ConfigMergeError(ValueError):
    """A merge would turn a container into a leaf (DG troubleshooting: `copyFrom ... not a leaf`)."""


@dataclass
class Leaf:
    value: Any
    modtime: int


@dataclass
class Topics:
    children: dict[str, tuple[str, Leaf | Topics]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], modtime: int) -> Topics:
        tree = cls()
        tree.merge(document, modtime)
        return tree

    def copy(self) -> Topics:
        return copy.deepcopy(self)

    def merge(self, document: Mapping[str, Any], modtime: int, path: str = "") -> None:
        for name, value in document.items():
            lowered = str(name).lower()
            existing = self.children.get(lowered)
            here = f"{path}/{name}"
            if isinstance(value, Mapping):
                if existing is None or isinstance(existing[1], Leaf):
                    if (
                        existing is not None
                        and isinstance(existing[1], Leaf)
                        and existing[1].modtime > modtime
                    ):
                        continue
                    child = Topics()
                    self.children[lowered] = (existing[0] if existing else str(name), child)
                else:
                    child = existing[1]
                child.merge(value, modtime, here)
            else:
                if existing is not None and isinstance(existing[1], Topics):
                    if not existing[1].children and modtime >= DEFAULT_TIMESTAMP:
                        self.children[lowered] = (existing[0], Leaf(copy.deepcopy(value), modtime))
                        continue
                    raise ConfigMergeError(f"copyFrom: {here} is already a container, not a leaf")
                leaf = existing[1] if existing is not None else None
                if leaf is None or (isinstance(leaf, Leaf) and modtime >= leaf.modtime):
                    label = existing[0] if existing else str(name)
                    self.children[lowered] = (label, Leaf(copy.deepcopy(value), modtime))

    def remove(self, path: list[str]) -> None:
        node: Topics = self
        for part in path[:-1]:
            found = node.children.get(part.lower())
            if found is None or not isinstance(found[1], Topics):
                return
            node = found[1]
        if path:
            node.children.pop(path[-1].lower(), None)

    def reset(self, pointers: list[str]) -> None:
        for pointer in pointers:
            if pointer == "":
                self.children.clear()
                return
            path = pointer_path(pointer)
            if any(part.isdigit() for part in path):  # Jackson JsonPointer.mayMatchElement()
                LOG.error(
                    "Failed to reset because provided pointer for reset points to an element of array. "
                    "{jsonPointer=%s}",
                    pointer,
                )
                continue
            self.remove(path)

    def stamp_defaults(self, modtime: int) -> None:
        """What the merge into the kernel config does: every value applied by this deployment carries its
        timestamp (so a later version's defaults, at timestamp 1, never replace it)."""
        for _label, child in list(self.children.values()):
            if isinstance(child, Leaf):
                if child.modtime <= DEFAULT_TIMESTAMP:
                    child.modtime = modtime
            else:
                child.stamp_defaults(modtime)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for label, child in self.children.values():
            out[label] = copy.deepcopy(child.value) if isinstance(child, Leaf) else child.to_dict()
        return out

    def to_state(self) -> dict[str, Any]:
        """Persistable form (keeps labels and timestamps)."""
        return {
            lowered: [
                label,
                {"v": child.value, "t": child.modtime} if isinstance(child, Leaf) else child.to_state(),
            ]
            for lowered, (label, child) in self.children.items()
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Topics:
        tree = cls()
        for lowered, (label, child) in state.items():
            if isinstance(child, Mapping) and set(child) == {"v", "t"}:
                tree.children[lowered] = (label, Leaf(child["v"], int(child["t"])))
            else:
                tree.children[lowered] = (label, cls.from_state(child))
        return tree


def pointer_path(pointer: str) -> list[str]:
    """RFC 6901 pointer to its reference tokens."""
    if not pointer.startswith("/"):
        raise ValueError(f"'{pointer}' is not a JSON pointer")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def resolve_configuration(
    running: Topics | None,
    defaults: Mapping[str, Any],
    reset: list[str] | None,
    merge: Mapping[str, Any] | None,
    deployment_timestamp: int,
) -> Topics:
    """KernelConfigResolver.resolveConfigurationToApply: RESET then defaults (timestamp 1) then MERGE."""
    resolved = running.copy() if running is not None else Topics()
    if reset:
        resolved.reset(reset)
    resolved.merge(defaults, DEFAULT_TIMESTAMP)
    if merge:
        resolved.merge(merge, deployment_timestamp)
    resolved.stamp_defaults(deployment_timestamp)
    return resolved


def lookup(document: Any, pointer: str) -> tuple[bool, Any]:
    """JsonNode.at(pointer) with case-insensitive keys; (found, node)."""
    if pointer == "":
        return True, document
    try:
        path = pointer_path(pointer)
    except ValueError:
        return False, None
    node = document
    for part in path:
        if isinstance(node, Mapping):
            match = next((v for k, v in node.items() if str(k).lower() == part.lower()), _MISSING)
            if match is _MISSING:
                return False, None
            node = match
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


_MISSING = object()
