"""UpdateState, SubscribeToComponentUpdates, DeferComponentUpdate and GetComponentDetails."""

from __future__ import annotations

from typing import Any

from edgeml.twin.device.ipc.authorization import CLI_SERVICE, authorize
from edgeml.twin.device.ipc.errors import InvalidArgumentsError
from edgeml.twin.device.ipc.operations.base import OperationContext, OperationSpec, optional_str, required_str

REPORTABLE_STATES = ("RUNNING", "ERRORED")


def update_state(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    state = required_str(request, "state")
    if state not in REPORTABLE_STATES:
        raise InvalidArgumentsError(f"state must be one of {', '.join(REPORTABLE_STATES)}, got {state}")
    ctx.services.components.reported(ctx.component, state)
    return {}


def subscribe_to_component_updates(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    ctx.stream.on_close(ctx.services.updates.subscribe(ctx.component.name, ctx.stream))
    return {}


def defer_component_update(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    recheck = request.get("recheckAfterMs", 0)
    if not isinstance(recheck, int) or isinstance(recheck, bool) or recheck < 0:
        raise InvalidArgumentsError("recheckAfterMs must be a non-negative integer")
    ctx.services.updates.defer(
        ctx.component.name, optional_str(request, "deploymentId"), recheck, optional_str(request, "message")
    )
    return {}


def get_component_details(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    name = required_str(request, "componentName")
    caller = ctx.component
    authorize(caller.name, caller.config.tree, CLI_SERVICE, "aws.greengrass#GetComponentDetails", name)
    record = ctx.services.components.require(name)
    return {
        "componentDetails": {
            "componentName": record.name,
            "version": record.version,
            "state": record.state,
            "configuration": record.config.snapshot(),
        }
    }


OPERATIONS = (
    OperationSpec("UpdateState", update_state),
    OperationSpec("SubscribeToComponentUpdates", subscribe_to_component_updates, streaming=True),
    OperationSpec("DeferComponentUpdate", defer_component_update),
    OperationSpec("GetComponentDetails", get_component_details),
)
