"""GetConfiguration, UpdateConfiguration, SubscribeToConfigurationUpdate,
SubscribeToValidateConfigurationUpdates and SendConfigurationValidityReport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeml.twin.device.ipc.config_events import ConfigurationSubscription
from edgeml.twin.device.ipc.errors import InvalidArgumentsError
from edgeml.twin.device.ipc.operations.base import OperationContext, OperationSpec, key_path, optional_str


def get_configuration(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    target = optional_str(request, "componentName") or ctx.component.name
    path = key_path(request)
    record = ctx.services.components.require(target)
    node = record.config.get(path)
    # A leaf comes back as {last key: value}, as the nucleus answers it.
    value = dict(node) if isinstance(node, Mapping) else {path[-1]: node}
    return {"componentName": target, "value": value}


def update_configuration(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    path = key_path(request)
    value = request.get("valueToMerge")
    if not isinstance(value, dict):
        raise InvalidArgumentsError("valueToMerge is required and must be an object")
    timestamp = request.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, int | float):
        raise InvalidArgumentsError("timestamp must be a number (epoch seconds)")
    record = ctx.component
    changed = record.config.merge(path, value, float(timestamp) if timestamp is not None else None)
    if changed:
        ctx.services.config_events.notify(record.name, changed)
    return {}


def subscribe_to_configuration_update(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    target = optional_str(request, "componentName") or ctx.component.name
    ctx.services.components.require(target)
    subscription = ConfigurationSubscription(target, key_path(request), ctx.stream)
    ctx.stream.on_close(ctx.services.config_events.subscribe_updates(subscription))
    return {}


def subscribe_to_validate_configuration_updates(
    ctx: OperationContext, request: dict[str, Any]
) -> dict[str, Any]:
    ctx.stream.on_close(ctx.services.config_events.subscribe_validation(ctx.component.name, ctx.stream))
    return {}


def send_configuration_validity_report(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    report = request.get("configurationValidityReport")
    if not isinstance(report, dict):
        raise InvalidArgumentsError("configurationValidityReport is required")
    ctx.services.config_events.report(ctx.component.name, report)
    return {}


OPERATIONS = (
    OperationSpec("GetConfiguration", get_configuration),
    OperationSpec("UpdateConfiguration", update_configuration),
    OperationSpec("SubscribeToConfigurationUpdate", subscribe_to_configuration_update, streaming=True),
    OperationSpec(
        "SubscribeToValidateConfigurationUpdates", subscribe_to_validate_configuration_updates, streaming=True
    ),
    OperationSpec("SendConfigurationValidityReport", send_configuration_validity_report),
)
