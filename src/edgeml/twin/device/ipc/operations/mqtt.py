"""PublishToIoTCore and SubscribeToIoTCore."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from edgeml.twin.device.ipc.authorization import MQTT_PROXY_SERVICE, authorize
from edgeml.twin.device.ipc.errors import InvalidArgumentsError
from edgeml.twin.device.ipc.iotcore import CloudSubscription
from edgeml.twin.device.ipc.operations.base import OperationContext, OperationSpec, required_str
from edgeml.twin.device.ipc.topics import is_mqtt_filter


def _qos(request: dict[str, Any]) -> int:
    value = request.get("qos", "0")
    if value not in ("0", "1"):
        raise InvalidArgumentsError(f"qos must be '0' or '1', got {value!r}")
    return int(value)


def publish_to_iot_core(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    topic = required_str(request, "topicName")
    if is_mqtt_filter(topic):
        raise InvalidArgumentsError(f"Cannot publish to a topic with wildcards: {topic}")
    qos = _qos(request)
    encoded = request.get("payload", "")
    try:
        payload = base64.b64decode(encoded, validate=True) if encoded else b""
    except (binascii.Error, TypeError) as error:
        raise InvalidArgumentsError("payload must be base64") from error
    component = ctx.component
    authorize(
        component.name, component.config.tree, MQTT_PROXY_SERVICE, "aws.greengrass#PublishToIoTCore", topic
    )
    ctx.services.iot_core.record(component.name, topic, qos, payload, bool(request.get("retain", False)))
    return {}


def subscribe_to_iot_core(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    topic_filter = required_str(request, "topicName")
    qos = _qos(request)
    component = ctx.component
    authorize(
        component.name,
        component.config.tree,
        MQTT_PROXY_SERVICE,
        "aws.greengrass#SubscribeToIoTCore",
        topic_filter,
    )
    unsubscribe = ctx.services.iot_core.subscribe(
        CloudSubscription(topic_filter, qos, component.name, ctx.stream)
    )
    ctx.stream.on_close(unsubscribe)
    return {}


OPERATIONS = (
    OperationSpec("PublishToIoTCore", publish_to_iot_core),
    OperationSpec("SubscribeToIoTCore", subscribe_to_iot_core, streaming=True),
)
