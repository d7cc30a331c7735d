"""Optional: one ring's Greengrass deployment as a CloudFormation resource, from the rollout spec that
`edgeml deploy` reads (edgeml.deploy.spec), for teams that want the first ring pinned in CloudFormation.

AWS::GreengrassV2::Deployment has only createOnly properties besides Tags (CFN schema), so any change is a
replacement. The resource's logical id and DeploymentName carry a hash of what it deploys (components,
versions, configuration updates, policies, job configuration, target): a changed spec is a new resource
and a new deployment revision for the same thing group, never an update that CloudFormation rejects.
Both the removal and the replacement policy are Retain: CloudFormation's delete handler would cancel and
delete the old revision, which changes nothing on devices (DG cancel/delete) and would only erase history.

The stack never creates component versions: they come from `edgeml publish` (a new patch version per
publish, gdk's NEXT_PATCH), so an edited recipe never meets CreateComponentVersion's ConflictException.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_greengrassv2 as greengrassv2
from constructs import Construct

from edgeml_infra.settings import SettingsError

# Keys of the components map are component names: never re-cased.
_VERBATIM_MAPS = {"Components"}


def pascal(value: Any, key: str = "") -> Any:
    """An API (camelCase) document in CloudFormation's PascalCase property names."""
    if isinstance(value, dict):
        if key in _VERBATIM_MAPS:
            return {name: pascal(item) for name, item in value.items()}
        out = {}
        for name, item in value.items():
            cased = name[:1].upper() + name[1:]
            out[cased] = pascal(item, cased)
        return out
    if isinstance(value, list):
        return [pascal(item) for item in value]
    return value


class RingDeploymentStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, spec_path: Path, ring_name: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        from edgeml.deploy.spec import load_spec  # the rollout's own reader: one spec format

        spec = load_spec(spec_path)
        ring = spec.ring(ring_name)
        if ring.thing_group is None:
            raise SettingsError(
                f"edgeml.deployment.ring: ring {ring_name!r} is a share of {ring.parent_group}, whose thing "
                "group edgeml deploy creates; a CloudFormation deployment needs a thingGroup ring"
            )
        target = self.format_arn(service="iot", resource="thinggroup", resource_name=ring.thing_group)
        content = {
            "target": ring.thing_group,
            "components": spec.deployment_components(),
            "deploymentPolicies": spec.deployment_policies,
            "iotJobConfiguration": ring.job_configuration,
        }
        self.content_hash = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]
        self.deployment = greengrassv2.CfnDeployment(
            self,
            f"Deployment{self.content_hash}",
            target_arn=target,
            deployment_name=f"{spec.name}-{ring.name}-{self.content_hash}",
            tags={"edgeml:rollout": spec.name, "edgeml:ring": ring.name, "edgeml:source": "cdk"},
        )
        self.deployment.add_property_override("Components", pascal(content["components"], "Components"))
        if spec.deployment_policies:
            self.deployment.add_property_override("DeploymentPolicies", pascal(spec.deployment_policies))
        if ring.job_configuration:
            self.deployment.add_property_override("IotJobConfiguration", pascal(ring.job_configuration))
        self.deployment.apply_removal_policy(RemovalPolicy.RETAIN)
