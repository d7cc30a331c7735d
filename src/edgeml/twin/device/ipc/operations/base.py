"""What an operation handler gets: the device's services, the calling component and its stream."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeml.twin.device.ipc.components import ComponentRecord, ComponentRegistry
from edgeml.twin.device.ipc.config_events import ConfigurationEvents
from edgeml.twin.device.ipc.errors import InvalidArgumentsError
from edgeml.twin.device.ipc.iotcore import IoTCoreBridge
from edgeml.twin.device.ipc.pubsub import PubSubBroker
from edgeml.twin.device.ipc.streams import OperationStream
from edgeml.twin.device.ipc.updates import ComponentUpdates

MODEL_PREFIX = "aws.greengrass#"


@dataclass
class DeviceServices:
    """The nucleus-side state one simulated core device shares among its components."""

    components: ComponentRegistry
    pubsub: PubSubBroker
    iot_core: IoTCoreBridge
    config_events: ConfigurationEvents
    updates: ComponentUpdates


@dataclass
class OperationContext:
    """One request: who asked, on which stream, against which device."""

    services: DeviceServices
    component: ComponentRecord
    stream: OperationStream


Handler = Callable[[OperationContext, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class OperationSpec:
    """An IPC operation: its model name, response shape and whether events follow the response."""

    name: str
    handler: Handler
    streaming: bool = False

    @property
    def model_name(self) -> str:
        return MODEL_PREFIX + self.name

    @property
    def response_model(self) -> str:
        return f"{MODEL_PREFIX}{self.name}Response"


def required_str(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidArgumentsError(f"{key} is required and must be a non-empty string")
    return value


def optional_str(request: dict[str, Any], key: str) -> str | None:
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentsError(f"{key} must be a string")
    return value


def key_path(request: dict[str, Any], key: str = "keyPath") -> tuple[str, ...]:
    value = request.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise InvalidArgumentsError(f"{key} must be a list of strings")
    return tuple(value)
