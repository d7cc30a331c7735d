"""GreengrassV2 tags: TagResource / UntagResource / ListTagsForResource on components, component versions,
deployments and core devices (BOTO: at most 200 tags, keys 1-128 and values 0-256 characters; the
`aws:` prefix is reserved, as everywhere in AWS tagging)."""

from __future__ import annotations

import re
from typing import Any

from edgeml.twin.cloud.controlplane.arns import PUBLIC_OWNER, parse_component_arn
from edgeml.twin.cloud.controlplane.core import Core
from edgeml.twin.cloud.controlplane.errors import not_found, validation_error

MAX_TAGS = 200
_DEPLOYMENT = re.compile(r"^arn:[^:]*:greengrass:[^:]*:[0-9]+:deployments:(?P<id>[^:]+)$")
_CORE_DEVICE = re.compile(r"^arn:[^:]*:greengrass:[^:]*:[0-9]+:coreDevices:(?P<thing>[^:]+)$")


class Tags:
    def __init__(self, core: Core) -> None:
        self.core = core

    def _check_resource(self, arn: str) -> None:
        state = self.core.state
        deployment = _DEPLOYMENT.match(arn)
        if deployment:
            if deployment["id"] not in state.deployments:
                raise not_found(f"Deployment {deployment['id']} does not exist", arn, "Deployment")
            return
        device = _CORE_DEVICE.match(arn)
        if device:
            record = state.core_devices.get(device["thing"])
            if record is None or not record.get("reported"):
                raise not_found(f"Core device {device['thing']} does not exist", arn, "CoreDevice")
            return
        parsed = parse_component_arn(arn, "resourceArn")
        if parsed.owner == PUBLIC_OWNER:
            raise validation_error("Public components cannot be tagged", field_name="resourceArn")
        if parsed.version is not None:
            if arn not in state.components:
                raise not_found(f"Component version {arn} does not exist", arn, "ComponentVersion")
        elif not any(
            r["name"] == parsed.name and r["region"] == parsed.region for r in state.components.values()
        ):
            raise not_found(f"Component {arn} does not exist", arn, "Component")

    def tag_resource(self, resourceArn: str, tags: dict[str, str]) -> dict[str, Any]:
        self._check_resource(resourceArn)
        for key in tags:
            if key.lower().startswith("aws:"):
                raise validation_error(f"Tag key '{key}': the aws: prefix is reserved", field_name="tags")
        merged = {**self.core.state.tags.get(resourceArn, {}), **tags}
        if len(merged) > MAX_TAGS:
            raise validation_error(f"A resource can have at most {MAX_TAGS} tags", field_name="tags")
        self.core.state.tags[resourceArn] = merged
        return {}

    def untag_resource(self, resourceArn: str, tagKeys: list[str]) -> dict[str, Any]:
        self._check_resource(resourceArn)
        kept = {k: v for k, v in self.core.state.tags.get(resourceArn, {}).items() if k not in set(tagKeys)}
        self.core.state.tags[resourceArn] = kept
        return {}

    def list_tags_for_resource(self, resourceArn: str) -> dict[str, Any]:
        self._check_resource(resourceArn)
        return {"tags": dict(self.core.state.tags.get(resourceArn, {}))}
