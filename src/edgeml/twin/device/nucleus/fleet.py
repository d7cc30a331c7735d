"""Many device twins on one machine, provisioned as the nucleus installer's `--provision` does (a thing,
in its thing groups), and `deploy_to_group`: a deployment through the control plane, waited on.

Devices share this machine's loopback, so a fixed port a component's configuration names (Stream
Manager's 8088) is given to each device as a free port of its own (`port_map`); the device's
aws.greengrass.StreamManager configuration then shows that port. This is the twin's second and last
deviation from a device (the first is AWS_ENDPOINT_URL, `environment.TWIN_CLOUD_VARIABLES`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.device.nucleus.device import NucleusTwin
from edgeml.twin.loopback import free_port

TERMINAL_EFFECTIVE = frozenset({"SUCCEEDED", "COMPLETED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"})


def cloud_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=TWIN_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=TWIN_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=TWIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=TWIN_CREDENTIALS["AWS_SESSION_TOKEN"],
    )


def provision(endpoint_url: str, thing: str, groups: Sequence[str]) -> None:
    iot = cloud_client("iot", endpoint_url)
    try:
        iot.create_thing(thingName=thing)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    for group in groups:
        try:
            iot.create_thing_group(thingGroupName=group)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)


class DeviceFleet:
    def __init__(
        self,
        endpoint_url: str,
        root: Path,
        count: int,
        *,
        groups: Sequence[str] = (),
        prefix: str = "edgeml-core",
        poll_s: float = 0.5,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.devices = [
            NucleusTwin(
                root / f"{prefix}-{index}",
                f"{prefix}-{index}",
                endpoint_url,
                poll_s=poll_s,
                port_map={8088: free_port()},
            )
            for index in range(count)
        ]
        self.groups = list(groups)

    def start(self) -> DeviceFleet:
        for device in self.devices:
            provision(self.endpoint_url, device.thing_name, self.groups)
            device.start()
        return self

    def stop(self) -> None:
        for device in self.devices:
            device.stop()

    def __enter__(self) -> DeviceFleet:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def group_arn(endpoint_url: str, group: str) -> str:
    arn: str = cloud_client("iot", endpoint_url).describe_thing_group(thingGroupName=group)["thingGroupArn"]
    return arn


def wait_effective(
    endpoint_url: str, deployment_id: str, things: Sequence[str], timeout_s: float = 300.0
) -> dict[str, dict[str, Any]]:
    """Each thing's effective deployment for `deployment_id` once terminal (ListEffectiveDeployments)."""
    greengrass = cloud_client("greengrassv2", endpoint_url)
    deadline = time.monotonic() + timeout_s
    found: dict[str, dict[str, Any]] = {}
    while True:
        for thing in things:
            if thing in found:
                continue
            try:
                listed = greengrass.list_effective_deployments(coreDeviceThingName=thing)[
                    "effectiveDeployments"
                ]
            except ClientError:
                continue
            for entry in listed:
                if (
                    entry["deploymentId"] == deployment_id
                    and entry["coreDeviceExecutionStatus"] in TERMINAL_EFFECTIVE
                ):
                    found[thing] = entry
        if len(found) == len(things):
            return found
        if time.monotonic() > deadline:
            missing = sorted(set(things) - set(found))
            raise TimeoutError(
                f"deployment {deployment_id} not finished after {timeout_s:g} s on {', '.join(missing)}"
            )
        time.sleep(0.25)


def deploy_to_group(
    endpoint_url: str,
    group: str,
    components: Mapping[str, Mapping[str, Any]],
    things: Sequence[str],
    *,
    deployment_name: str = "edgeml",
    policies: Mapping[str, Any] | None = None,
    timeout_s: float = 300.0,
) -> dict[str, dict[str, Any]]:
    """CreateDeployment for thing group `group` (components as CreateDeployment takes them), then waits
    until every thing in `things` has finished it; returns each thing's effective deployment."""
    greengrass = cloud_client("greengrassv2", endpoint_url)
    created = greengrass.create_deployment(
        targetArn=group_arn(endpoint_url, group),
        deploymentName=deployment_name,
        components={name: dict(spec) for name, spec in components.items()},
        **({"deploymentPolicies": dict(policies)} if policies else {}),
    )
    return wait_effective(endpoint_url, created["deploymentId"], things, timeout_s)


def serve_devices(
    endpoint_url: str, root: Path, count: int, groups: Sequence[str], stop: threading.Event
) -> None:
    """What `edgeml twin up --devices N --groups ...` runs beside the cloud twin: N device twins under
    `root` (each `<root>/edgeml-core-<i>`, in `groups`), until `stop` is set."""
    with DeviceFleet(endpoint_url, root, count, groups=groups):
        stop.wait()
