"""ARNs of GreengrassV2 and IoT resources, built and read the way the services write them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgeml.twin.cloud.controlplane.errors import validation_error

PUBLIC_OWNER = "aws"
_COMPONENT = re.compile(
    r"^arn:(?P<partition>[^:]*):greengrass:(?P<region>[^:]*):(?P<owner>aws|[0-9]+):components:(?P<name>[^:]+)"
    r"(?::versions:(?P<version>[^:]+))?$"
)
_TARGET = re.compile(
    r"^arn:[^:]*:iot:(?P<region>[^:]*):(?P<account>[0-9]+):(?P<kind>thing|thinggroup)/(?P<name>.+)$"
)


@dataclass(frozen=True)
class ComponentArn:
    region: str
    owner: str
    name: str
    version: str | None

    @property
    def component(self) -> str:
        return component_arn(self.region, self.owner, self.name)


def component_arn(region: str, owner: str, name: str) -> str:
    return f"arn:aws:greengrass:{region}:{owner}:components:{name}"


def version_arn(region: str, owner: str, name: str, version: str) -> str:
    return f"{component_arn(region, owner, name)}:versions:{version}"


def parse_component_arn(arn: str, field_name: str = "arn", *, versioned: bool | None = None) -> ComponentArn:
    match = _COMPONENT.match(arn)
    if not match:
        raise validation_error(f"'{arn}' is not a component ARN", field_name=field_name)
    parsed = ComponentArn(match["region"], match["owner"], match["name"], match["version"])
    if versioned is True and parsed.version is None:
        raise validation_error(
            f"'{arn}' is a component ARN without a version; a version ARN is needed", field_name=field_name
        )
    if versioned is False and parsed.version is not None:
        raise validation_error(
            f"'{arn}' is a component version ARN; a component ARN is needed", field_name=field_name
        )
    return parsed


@dataclass(frozen=True)
class TargetArn:
    region: str
    account: str
    kind: str  # thing | thinggroup
    name: str

    @property
    def group_key(self) -> str:
        """The nucleus's group name for deployments to this target: thing/<t> or thinggroup/<g>."""
        return f"{self.kind}/{self.name}"


def parse_target_arn(arn: str, field_name: str = "targetArn") -> TargetArn:
    match = _TARGET.match(arn)
    if not match:
        raise validation_error(f"'{arn}' is not a thing or thing group ARN", field_name=field_name)
    return TargetArn(match["region"], match["account"], match["kind"], match["name"])


def thing_arn(region: str, account: str, thing: str) -> str:
    return f"arn:aws:iot:{region}:{account}:thing/{thing}"


def thing_group_arn(region: str, account: str, group: str) -> str:
    return f"arn:aws:iot:{region}:{account}:thinggroup/{group}"


def job_arn(region: str, account: str, job_id: str) -> str:
    return f"arn:aws:iot:{region}:{account}:job/{job_id}"


def deployment_arn(region: str, account: str, deployment_id: str) -> str:
    return f"arn:aws:greengrass:{region}:{account}:deployments:{deployment_id}"


def core_device_arn(region: str, account: str, thing: str) -> str:
    return f"arn:aws:greengrass:{region}:{account}:coreDevices:{thing}"


def configuration_arn(region: str, account: str, target: TargetArn, revision: int) -> str:
    """The device document's configurationArn: its resource is the nucleus's group name, then the revision."""
    return f"arn:aws:greengrass:{region}:{account}:configuration:{target.group_key}:{revision}"
