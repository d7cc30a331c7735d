"""One component's configuration tree: read by key path, merged by UpdateConfiguration, replaced by
a deployment, with the leaf paths each change touched (what SubscribeToConfigurationUpdate reports)."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

from edgeml.twin.device.ipc.errors import (
    FailedUpdateConditionCheckError,
    InvalidArgumentsError,
    ResourceNotFoundError,
)

KeyPath = tuple[str, ...]


def _leaf_paths(value: Any, prefix: KeyPath) -> list[KeyPath]:
    if isinstance(value, Mapping) and value:
        paths: list[KeyPath] = []
        for key, child in value.items():
            paths.extend(_leaf_paths(child, (*prefix, str(key))))
        return paths
    return [prefix]


def changed_paths(old: Any, new: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    """Leaf paths whose value differs between `old` and `new` (added, removed or changed)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        paths: list[KeyPath] = []
        for key in list(old) + [key for key in new if key not in old]:
            if key not in new:
                paths.extend(_leaf_paths(old[key], (*prefix, str(key))))
            elif key not in old:
                paths.extend(_leaf_paths(new[key], (*prefix, str(key))))
            else:
                paths.extend(changed_paths(old[key], new[key], (*prefix, str(key))))
        return paths
    return [] if old == new else [prefix]


def _deep_merge(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        existing = target.get(key)
        if isinstance(value, Mapping) and isinstance(existing, dict):
            _deep_merge(existing, value)
        else:
            target[key] = copy.deepcopy(value)


class ConfigStore:
    """A JSON-like configuration tree owned by one component."""

    def __init__(self, configuration: Mapping[str, Any] | None = None) -> None:
        self._tree: dict[str, Any] = copy.deepcopy(dict(configuration or {}))
        self._updated_at: dict[KeyPath, float] = {}

    @property
    def tree(self) -> dict[str, Any]:
        """The live tree (read it on the server's loop only; `snapshot()` elsewhere)."""
        return self._tree

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self._tree)

    def get(self, key_path: Sequence[str]) -> Any:
        """The node at `key_path`; ResourceNotFoundError when any level is missing."""
        node: Any = self._tree
        for depth, key in enumerate(key_path):
            if not isinstance(node, Mapping) or key not in node:
                missing = "/".join(key_path[: depth + 1])
                raise ResourceNotFoundError(
                    f"Key not found: {missing}", resource_type="KeyPath", resource_name=missing
                )
            node = node[key]
        return node

    def merge(
        self, key_path: Sequence[str], value: Mapping[str, Any], timestamp: float | None
    ) -> list[KeyPath]:
        """Deep-merges `value` into the container at `key_path` (created if missing).

        Raises FailedUpdateConditionCheckError when a touched key was last updated after `timestamp`.
        Returns the leaf paths that changed.
        """
        if not isinstance(value, Mapping):
            raise InvalidArgumentsError("valueToMerge must be an object")
        prefix = tuple(key_path)
        when = time.time() if timestamp is None else timestamp
        touched = _leaf_paths(value, prefix)
        for path in touched:
            for depth in range(len(path), 0, -1):
                stamp = self._updated_at.get(path[:depth])
                if stamp is not None and stamp > when:
                    raise FailedUpdateConditionCheckError(
                        f"Proposed timestamp is older than the current value of {'/'.join(path)}"
                    )
        container: dict[str, Any] = self._tree
        for key in prefix:
            child = container.get(key)
            if not isinstance(child, dict):
                child = {}
                container[key] = child
            container = child
        before = copy.deepcopy(container)
        _deep_merge(container, value)
        for path in touched:
            self._updated_at[path] = when
        return changed_paths(before, container, prefix)

    def replace(self, configuration: Mapping[str, Any]) -> list[KeyPath]:
        """Replaces the whole tree (what a deployment does); returns the changed leaf paths."""
        new = copy.deepcopy(dict(configuration))
        paths = changed_paths(self._tree, new)
        self._tree = new
        now = time.time()
        for path in paths:
            self._updated_at[path] = now
        return paths
