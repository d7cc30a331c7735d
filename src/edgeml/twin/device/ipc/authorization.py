"""accessControl from a component's configuration, enforced as the nucleus does.

    configuration["accessControl"][<ipc service>][<policy id>] =
        {"policyDescription": ..., "operations": ["aws.greengrass#PublishToTopic", ...], "resources": [...]}

An operation on a resource is allowed when one policy of that service lists the operation (or `*`)
and a resource that matches: `*` matches any run of characters; for the IoT Core MQTT service
resources are also MQTT filters (`+`, `#`). Local pub/sub resources take MQTT wildcards literally.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from edgeml.twin.device.ipc.errors import UnauthorizedError
from edgeml.twin.device.ipc.topics import glob_matches, mqtt_topic_matches

PUBSUB_SERVICE = "aws.greengrass.ipc.pubsub"
MQTT_PROXY_SERVICE = "aws.greengrass.ipc.mqttproxy"
CLI_SERVICE = "aws.greengrass.Cli"


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """One accessControl policy of one IPC service."""

    policy_id: str
    operations: tuple[str, ...]
    resources: tuple[str, ...]

    def allows(self, service: str, operation: str, resource: str) -> bool:
        if "*" not in self.operations and operation not in self.operations:
            return False
        for pattern in self.resources:
            if glob_matches(pattern, resource):
                return True
            if service == MQTT_PROXY_SERVICE and mqtt_topic_matches(pattern, resource):
                return True
        return False


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def policies_for(configuration: Mapping[str, Any], service: str) -> Iterator[AccessPolicy]:
    """The policies `configuration` grants for `service`; malformed entries grant nothing."""
    access = configuration.get("accessControl")
    if not isinstance(access, Mapping):
        return
    by_id = access.get(service)
    if not isinstance(by_id, Mapping):
        return
    for policy_id, policy in by_id.items():
        if isinstance(policy, Mapping):
            yield AccessPolicy(
                str(policy_id), _strings(policy.get("operations")), _strings(policy.get("resources"))
            )


def is_authorized(configuration: Mapping[str, Any], service: str, operation: str, resource: str) -> bool:
    """Whether a component with `configuration` may run `operation` on `resource`."""
    return any(policy.allows(service, operation, resource) for policy in policies_for(configuration, service))


def authorize(
    component: str, configuration: Mapping[str, Any], service: str, operation: str, resource: str
) -> None:
    """Raises UnauthorizedError (the modelled error) unless the operation is allowed."""
    if not is_authorized(configuration, service, operation, resource):
        raise UnauthorizedError(
            f"Principal {component} is not authorized to perform {service}:{operation} on resource {resource}"
        )
