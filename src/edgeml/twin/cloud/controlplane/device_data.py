"""The greengrassv2-data operations a nucleus calls that botocore's greengrassv2 model lacks
(protocol/models/README.md has their sources): ListThingGroupsForCoreDevice, GetDeploymentConfiguration."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from edgeml.twin.cloud.controlplane import context
from edgeml.twin.cloud.controlplane.components import Components
from edgeml.twin.cloud.controlplane.core import Core
from edgeml.twin.cloud.controlplane.deployments import Deployments, device_document
from edgeml.twin.cloud.controlplane.errors import not_found
from edgeml.twin.cloud.controlplane.paging import page

DIGEST_ALGORITHM = "SHA-256"  # NUC deployment/DeploymentDocumentDownloader.checkIntegrity -> util/Digest


def configurations_bucket(account: str, region: str) -> str:
    """The twin's own bucket for full deployment documents (the service keeps them in its own storage)."""
    return f"edgeml-twin-deployment-configurations-{account}-{region}"


def _group_entry(group: Any) -> dict[str, str]:
    return {"thingGroupName": group.thing_group_name, "thingGroupArn": group.arn}


class DeviceData:
    def __init__(self, core: Core, deployments: Deployments, components: Components) -> None:
        self.core = core
        self.deployments = deployments
        self.components = components

    def _core_device(self, thing: str) -> tuple[str, str]:
        ctx = context.current()
        if not self.core.thing_exists(ctx.region, ctx.account_id, thing):
            raise not_found(f"Core device {thing} does not exist", thing, "CoreDevice")
        return ctx.region, ctx.account_id

    def list_thing_groups_for_core_device(
        self, coreDeviceThingName: str, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        """The device's own groups, each with its ancestors root first, from moto's IoT membership."""
        region, account = self._core_device(coreDeviceThingName)
        groups = [
            {
                **_group_entry(group),
                "rootToParentThingGroups": [
                    _group_entry(parent) for parent in self.core.root_to_parent(region, group)
                ],
            }
            for group in self.core.direct_groups_of_thing(region, account, coreDeviceThingName)
        ]
        items, token = page(groups, maxResults, nextToken)
        return {"thingGroups": items, **({"nextToken": token} if token else {})}

    def get_deployment_configuration(
        self, deploymentId: str, coreDeviceThingName: str, s3EndpointType: str | None = None
    ) -> dict[str, Any]:
        """A presigned URL to the deployment's device document (the job document's format) and its digest."""
        region, account = self._core_device(coreDeviceThingName)
        record = self.deployments.find(deploymentId)
        target = record["targetArn"]
        reaches = target == f"arn:aws:iot:{region}:{account}:thing/{coreDeviceThingName}" or any(
            group.arn == target or target.endswith(f":thinggroup/{group.thing_group_name}")
            for group in self.core.groups_of_thing(region, account, coreDeviceThingName)
        )
        if not reaches:
            raise not_found(
                f"Deployment {deploymentId} does not target core device {coreDeviceThingName}",
                deploymentId,
                "Deployment",
            )
        text = json.dumps(device_document(record), separators=(",", ":"))
        bucket, key = configurations_bucket(account, region), f"{deploymentId}.json"
        backend = self.core.moto_s3()
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, region)
        backend.put_object(bucket, key, text.encode("utf-8"))
        digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
        return {
            "preSignedUrl": self.components.presign(region, bucket, key),
            "integrityCheck": {"algorithm": DIGEST_ALGORITHM, "digest": digest},
        }
