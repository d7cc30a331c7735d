"""accessControl matching of the IPC twin: operations, `*` globs, MQTT wildcards for IoT Core only."""

from __future__ import annotations

from edgeml.twin.device.ipc.authorization import MQTT_PROXY_SERVICE, PUBSUB_SERVICE, is_authorized
from edgeml.twin.device.ipc.topics import mqtt_topic_matches

PUBLISH = "aws.greengrass#PublishToTopic"
SUBSCRIBE = "aws.greengrass#SubscribeToTopic"
IOT_PUBLISH = "aws.greengrass#PublishToIoTCore"


def _config(service: str, operations: list[str], resources: list[str]) -> dict[str, object]:
    policy = {"policyDescription": "p", "operations": operations, "resources": resources}
    return {"accessControl": {service: {"com.example.App:pubsub:1": policy}}}


def test_operation_must_be_listed_or_star() -> None:
    config = _config(PUBSUB_SERVICE, [PUBLISH], ["*"])
    assert is_authorized(config, PUBSUB_SERVICE, PUBLISH, "any/topic")
    assert not is_authorized(config, PUBSUB_SERVICE, SUBSCRIBE, "any/topic")
    assert is_authorized(_config(PUBSUB_SERVICE, ["*"], ["t"]), PUBSUB_SERVICE, SUBSCRIBE, "t")


def test_star_glob_in_resources() -> None:
    config = _config(PUBSUB_SERVICE, [PUBLISH], ["edgeml/*/results"])
    assert is_authorized(config, PUBSUB_SERVICE, PUBLISH, "edgeml/dev-1/results")
    assert is_authorized(config, PUBSUB_SERVICE, PUBLISH, "edgeml/a/b/results")
    assert not is_authorized(config, PUBSUB_SERVICE, PUBLISH, "edgeml/dev-1/health")


def test_mqtt_wildcards_are_literal_for_local_pubsub_but_filters_for_iot_core() -> None:
    pubsub = _config(PUBSUB_SERVICE, [SUBSCRIBE], ["sensors/#"])
    assert is_authorized(pubsub, PUBSUB_SERVICE, SUBSCRIBE, "sensors/#")
    assert not is_authorized(pubsub, PUBSUB_SERVICE, SUBSCRIBE, "sensors/temp")
    mqtt = _config(MQTT_PROXY_SERVICE, [IOT_PUBLISH], ["sensors/+/temp"])
    assert is_authorized(mqtt, MQTT_PROXY_SERVICE, IOT_PUBLISH, "sensors/dev-1/temp")
    assert not is_authorized(mqtt, MQTT_PROXY_SERVICE, IOT_PUBLISH, "sensors/dev-1/humidity")


def test_other_services_and_malformed_policies_grant_nothing() -> None:
    assert not is_authorized({}, PUBSUB_SERVICE, PUBLISH, "t")
    assert not is_authorized(_config(MQTT_PROXY_SERVICE, ["*"], ["*"]), PUBSUB_SERVICE, PUBLISH, "t")
    assert not is_authorized(
        {"accessControl": {PUBSUB_SERVICE: {"p": "not a dict"}}}, PUBSUB_SERVICE, PUBLISH, "t"
    )


def test_mqtt_filter_matching() -> None:
    assert mqtt_topic_matches("a/#", "a")
    assert mqtt_topic_matches("a/#", "a/b/c")
    assert mqtt_topic_matches("+/b", "a/b")
    assert not mqtt_topic_matches("a/+", "a/b/c")
    assert not mqtt_topic_matches("a/b", "a/b/c")
