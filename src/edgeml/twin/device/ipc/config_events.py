"""Configuration change notifications (SubscribeToConfigurationUpdate) and deployment-time
validation (SubscribeToValidateConfigurationUpdates + SendConfigurationValidityReport)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeml.twin.device.ipc.config_store import KeyPath
from edgeml.twin.device.ipc.errors import InvalidArgumentsError
from edgeml.twin.device.ipc.streams import OperationStream, encode_json

CONFIGURATION_UPDATE_EVENTS = "aws.greengrass#ConfigurationUpdateEvents"
VALIDATE_CONFIGURATION_EVENTS = "aws.greengrass#ValidateConfigurationUpdateEvents"
ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"


@dataclass(frozen=True)
class ValidityReport:
    """The outcome of a configuration validation round for one component."""

    component: str
    deployment_id: str
    status: str
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


@dataclass(eq=False, slots=True)
class ConfigurationSubscription:
    """One SubscribeToConfigurationUpdate stream: changes to `target`'s configuration under `key_path`."""

    target: str
    key_path: KeyPath
    stream: OperationStream

    def covers(self, changed: KeyPath) -> bool:
        shorter = min(len(changed), len(self.key_path))
        return changed[:shorter] == self.key_path[:shorter]


@dataclass(eq=False)
class _PendingValidation:
    component: str
    deployment_id: str
    report: asyncio.Future[ValidityReport] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ConfigurationEvents:
    """Subscriptions to configuration updates and validations; lives on the server's event loop."""

    def __init__(self) -> None:
        self._updates: list[ConfigurationSubscription] = []
        self._validators: dict[str, list[OperationStream]] = {}
        self._pending: dict[tuple[str, str], _PendingValidation] = {}

    def subscribe_updates(self, subscription: ConfigurationSubscription) -> Callable[[], None]:
        self._updates.append(subscription)

        def unsubscribe() -> None:
            if subscription in self._updates:
                self._updates.remove(subscription)

        return unsubscribe

    def notify(self, target: str, changed: Sequence[KeyPath]) -> int:
        """Sends one ConfigurationUpdateEvent per changed key to each covering subscription."""
        sent = 0
        for sub in list(self._updates):
            if sub.target != target:
                continue
            for path in changed:
                if sub.covers(path):
                    payload = encode_json(
                        {"configurationUpdateEvent": {"componentName": target, "keyPath": list(path)}}
                    )
                    sent += sub.stream.send_event(CONFIGURATION_UPDATE_EVENTS, payload)
        return sent

    def subscribe_validation(self, component: str, stream: OperationStream) -> Callable[[], None]:
        streams = self._validators.setdefault(component, [])
        streams.append(stream)

        def unsubscribe() -> None:
            if stream in streams:
                streams.remove(stream)

        return unsubscribe

    async def validate(
        self, component: str, deployment_id: str, configuration: dict[str, Any], timeout_s: float
    ) -> ValidityReport:
        """Asks the component's validators about `configuration`; ACCEPTED when it has none.

        A component that subscribed but sends no report within `timeout_s` counts as REJECTED.
        """
        streams = [stream for stream in self._validators.get(component, []) if not stream.closed]
        if not streams:
            return ValidityReport(component, deployment_id, ACCEPTED, "no validation subscriber")
        pending = _PendingValidation(component, deployment_id)
        self._pending[(component, deployment_id)] = pending
        event = encode_json(
            {
                "validateConfigurationUpdateEvent": {
                    "configuration": configuration,
                    "deploymentId": deployment_id,
                }
            }
        )
        try:
            for stream in streams:
                stream.send_event(VALIDATE_CONFIGURATION_EVENTS, event)
            return await asyncio.wait_for(asyncio.shield(pending.report), timeout_s)
        except TimeoutError:
            return ValidityReport(
                component,
                deployment_id,
                REJECTED,
                f"no validity report from {component} within {timeout_s:g} s",
            )
        finally:
            self._pending.pop((component, deployment_id), None)

    def report(self, component: str, body: dict[str, Any]) -> None:
        """Handles SendConfigurationValidityReport from `component`."""
        deployment_id = body.get("deploymentId")
        status = body.get("status")
        if status not in (ACCEPTED, REJECTED):
            raise InvalidArgumentsError(
                f"Validity report status must be ACCEPTED or REJECTED, got {status!r}"
            )
        pending = self._pending.get((component, str(deployment_id)))
        if pending is None or pending.report.done():
            raise InvalidArgumentsError("Validation request either timed out or was never made")
        message = body.get("message")
        pending.report.set_result(
            ValidityReport(
                component, str(deployment_id), status, message if isinstance(message, str) else None
            )
        )
