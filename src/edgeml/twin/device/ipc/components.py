"""The components a simulated core device knows: name, version, lifecycle state, configuration and
the SVCUID token each one connects with."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeml.twin.device.ipc.config_store import ConfigStore
from edgeml.twin.device.ipc.errors import ResourceNotFoundError, UnknownComponentError

LIFECYCLE_STATES = frozenset(
    {"NEW", "INSTALLED", "STARTING", "RUNNING", "STOPPING", "FINISHED", "ERRORED", "BROKEN"}
)


@dataclass
class ComponentRecord:
    """What the nucleus holds for one component."""

    name: str
    version: str
    svcuid: str
    config: ConfigStore
    state: str = "RUNNING"
    reported_states: list[str] = field(default_factory=list)


class ComponentRegistry:
    """Components by name and by SVCUID."""

    def __init__(self) -> None:
        self._by_name: dict[str, ComponentRecord] = {}
        self._by_token: dict[str, ComponentRecord] = {}
        # Called with (component, state) for each UpdateState (the nucleus twin's lifecycle hears it).
        self.on_reported: Callable[[str, str], None] | None = None

    def reported(self, record: ComponentRecord, state: str) -> None:
        """A component reported `state` through UpdateState."""
        record.state = state
        record.reported_states.append(state)
        if self.on_reported is not None:
            self.on_reported(record.name, state)

    def register(self, name: str, configuration: Mapping[str, Any], version: str) -> ComponentRecord:
        """Adds (or re-registers, keeping its token) a component."""
        existing = self._by_name.get(name)
        token = existing.svcuid if existing else secrets.token_urlsafe(24)
        record = ComponentRecord(name, version, token, ConfigStore(configuration))
        self._by_name[name] = record
        self._by_token[token] = record
        return record

    def unregister(self, name: str) -> None:
        record = self._by_name.pop(name, None)
        if record is not None:
            self._by_token.pop(record.svcuid, None)

    def by_token(self, token: str) -> ComponentRecord | None:
        return self._by_token.get(token)

    def find(self, name: str) -> ComponentRecord | None:
        return self._by_name.get(name)

    def get(self, name: str) -> ComponentRecord:
        """For twin-side hooks: UnknownComponentError when `name` was never registered."""
        record = self._by_name.get(name)
        if record is None:
            raise UnknownComponentError(f"component {name!r} is not registered with this IPC server")
        return record

    def require(self, name: str) -> ComponentRecord:
        """For IPC requests: the modelled ResourceNotFoundError when `name` is unknown."""
        record = self._by_name.get(name)
        if record is None:
            raise ResourceNotFoundError(
                f"Component {name} not found", resource_type="Component", resource_name=name
            )
        return record

    def names(self) -> list[str]:
        return list(self._by_name)

    def records(self) -> list[ComponentRecord]:
        return list(self._by_name.values())
