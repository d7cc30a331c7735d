"""The IPC operations the twin serves, by model name (`aws.greengrass#PublishToTopic`, ...)."""

from __future__ import annotations

from edgeml.twin.device.ipc.operations import configuration, lifecycle, mqtt, pubsub
from edgeml.twin.device.ipc.operations.base import DeviceServices, OperationContext, OperationSpec

OPERATIONS: dict[str, OperationSpec] = {
    spec.model_name: spec for module in (pubsub, mqtt, configuration, lifecycle) for spec in module.OPERATIONS
}

__all__ = ["OPERATIONS", "DeviceServices", "OperationContext", "OperationSpec"]
