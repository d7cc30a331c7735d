"""Local publish/subscribe between components (PublishToTopic / SubscribeToTopic)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeml.twin.device.ipc.streams import OperationStream, encode_json
from edgeml.twin.device.ipc.topics import is_mqtt_filter, mqtt_topic_matches

SUBSCRIPTION_MESSAGE = "aws.greengrass#SubscriptionResponseMessage"
RECEIVE_ALL = "RECEIVE_ALL_MESSAGES"
RECEIVE_FROM_OTHERS = "RECEIVE_MESSAGES_FROM_OTHERS"


@dataclass(eq=False, slots=True)
class TopicSubscription:
    """One SubscribeToTopic stream."""

    topic: str
    component: str
    receive_mode: str
    stream: OperationStream


class PubSubBroker:
    """Routes published messages to subscriptions: exact topics by lookup, MQTT filters by scan."""

    def __init__(self) -> None:
        self._exact: dict[str, list[TopicSubscription]] = {}
        self._filters: list[TopicSubscription] = []

    def subscribe(self, subscription: TopicSubscription) -> Callable[[], None]:
        """Adds `subscription`; returns the function that removes it."""
        wildcard = is_mqtt_filter(subscription.topic)
        if wildcard:
            self._filters.append(subscription)
        else:
            self._exact.setdefault(subscription.topic, []).append(subscription)

        def unsubscribe() -> None:
            bucket = self._filters if wildcard else self._exact.get(subscription.topic, [])
            if subscription in bucket:
                bucket.remove(subscription)
            if not wildcard and not bucket:
                self._exact.pop(subscription.topic, None)

        return unsubscribe

    def matching(self, topic: str) -> list[TopicSubscription]:
        found = list(self._exact.get(topic, ()))
        found.extend(sub for sub in self._filters if mqtt_topic_matches(sub.topic, topic))
        return found

    def publish(self, source_component: str, topic: str, publish_message: dict[str, Any]) -> int:
        """Delivers a PublishMessage body (jsonMessage or binaryMessage) to every matching subscriber.

        The message gets `context.topic` set, as the nucleus does. Returns how many streams got it.
        """
        targets = self.matching(topic)
        if not targets:
            return 0
        event: dict[str, Any] = {}
        for kind in ("jsonMessage", "binaryMessage"):
            body = publish_message.get(kind)
            if isinstance(body, dict):
                event[kind] = {**body, "context": {"topic": topic}}
        payload = encode_json(event)
        delivered = 0
        for sub in targets:
            if sub.receive_mode == RECEIVE_FROM_OTHERS and sub.component == source_component:
                continue
            if sub.stream.send_event(SUBSCRIPTION_MESSAGE, payload):
                delivered += 1
        return delivered
