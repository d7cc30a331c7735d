"""PublishToTopic and SubscribeToTopic."""

from __future__ import annotations

from typing import Any

from edgeml.twin.device.ipc.authorization import PUBSUB_SERVICE, authorize
from edgeml.twin.device.ipc.errors import InvalidArgumentsError
from edgeml.twin.device.ipc.operations.base import OperationContext, OperationSpec, optional_str, required_str
from edgeml.twin.device.ipc.pubsub import RECEIVE_ALL, RECEIVE_FROM_OTHERS, TopicSubscription
from edgeml.twin.device.ipc.topics import is_mqtt_filter


def publish_to_topic(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    topic = required_str(request, "topic")
    if is_mqtt_filter(topic):
        raise InvalidArgumentsError(f"Cannot publish to a topic with wildcards: {topic}")
    message = request.get("publishMessage")
    if not isinstance(message, dict) or ("jsonMessage" in message) == ("binaryMessage" in message):
        raise InvalidArgumentsError("publishMessage must hold exactly one of jsonMessage or binaryMessage")
    component = ctx.component
    authorize(component.name, component.config.tree, PUBSUB_SERVICE, "aws.greengrass#PublishToTopic", topic)
    ctx.services.pubsub.publish(component.name, topic, message)
    return {}


def subscribe_to_topic(ctx: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    topic = required_str(request, "topic")
    mode = optional_str(request, "receiveMode") or RECEIVE_ALL
    if mode not in (RECEIVE_ALL, RECEIVE_FROM_OTHERS):
        raise InvalidArgumentsError(f"Unknown receiveMode {mode}")
    component = ctx.component
    authorize(component.name, component.config.tree, PUBSUB_SERVICE, "aws.greengrass#SubscribeToTopic", topic)
    unsubscribe = ctx.services.pubsub.subscribe(TopicSubscription(topic, component.name, mode, ctx.stream))
    ctx.stream.on_close(unsubscribe)
    return {"topicName": topic}


OPERATIONS = (
    OperationSpec("PublishToTopic", publish_to_topic),
    OperationSpec("SubscribeToTopic", subscribe_to_topic, streaming=True),
)
