"""The AWS calls of a rollout: plain boto3, pointed wherever AWS_ENDPOINT_URL says (AWS or the cloud twin)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from edgeml.deploy.errors import DeployError

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=16)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def call_failed(what: str, error: ClientError | BotoCoreError) -> DeployError:
    """One line naming the call and AWS's answer."""
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return DeployError(f"{what}: {detail.get('Code', 'error')}: {detail.get('Message', '')}".rstrip(": "))
    return DeployError(f"{what}: {' '.join(str(error).split())}")


@dataclass
class Clients:
    """The boto3 clients a rollout uses (created on first use)."""

    region: str | None = None

    def _client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, config=_CONFIG)

    @cached_property
    def greengrass(self) -> Any:
        return self._client("greengrassv2")

    @cached_property
    def iot(self) -> Any:
        return self._client("iot")

    @cached_property
    def cloudwatch(self) -> Any:
        return self._client("cloudwatch")

    @cached_property
    def account(self) -> str:
        return str(self._client("sts").get_caller_identity()["Account"])

    @cached_property
    def region_name(self) -> str:
        return str(self.greengrass.meta.region_name)

    @cached_property
    def partition(self) -> str:
        return str(boto3.session.Session().get_partition_for_region(self.region_name))

    def thing_group_arn(self, group: str) -> str:
        return f"arn:{self.partition}:iot:{self.region_name}:{self.account}:thinggroup/{group}"

    def deployment_arn(self, deployment_id: str) -> str:
        return (
            f"arn:{self.partition}:greengrass:{self.region_name}:{self.account}:deployments:{deployment_id}"
        )

    def component_arn(self, name: str, version: str | None = None) -> str:
        arn = f"arn:{self.partition}:greengrass:{self.region_name}:{self.account}:components:{name}"
        return f"{arn}:versions:{version}" if version else arn


def pages(method: Any, key: str, **kwargs: Any) -> Iterator[Any]:
    """Items of every page of a list call that pages with nextToken."""
    token: str | None = None
    while True:
        answer = method(**kwargs, **({"nextToken": token} if token else {}))
        yield from answer.get(key) or []
        token = answer.get("nextToken")
        if not token:
            return


def group_members(clients: Clients, group: str) -> list[str] | None:
    """The thing names in a thing group, or None when the group does not exist."""
    try:
        return list(
            pages(clients.iot.list_things_in_thing_group, "things", thingGroupName=group, maxResults=250)
        )
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise call_failed(f"iot ListThingsInThingGroup {group}", error) from error


def component_version_exists(clients: Clients, name: str, version: str) -> bool:
    try:
        clients.greengrass.describe_component(arn=clients.component_arn(name, version))
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return False
        raise call_failed(f"greengrassv2 DescribeComponent {name} {version}", error) from error
    return True


def deployment_history(clients: Clients, group: str) -> list[dict[str, Any]]:
    """Every revision on a thing group, oldest first, each with its tags (GetDeployment)."""
    try:
        listed = list(
            pages(
                clients.greengrass.list_deployments,
                "deployments",
                targetArn=clients.thing_group_arn(group),
                historyFilter="ALL",
            )
        )
    except ClientError as error:
        raise call_failed(f"greengrassv2 ListDeployments {group}", error) from error
    full = [clients.greengrass.get_deployment(deploymentId=item["deploymentId"]) for item in listed]
    full.sort(key=lambda d: (d["creationTimestamp"], int(d.get("revisionId") or 0)))
    return full
