"""Fleet: ring thing groups under one parent group, the core-device IoT policy, the token exchange role
and its role alias.

A device is in exactly one ring group (the rollout assigns it); every ring group is a child of the
parent group, so a deployment to the parent reaches the whole fleet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from constructs import Construct

from edgeml.config import outputs
from edgeml.config.healthrule import HEALTH_TOPIC, RESULTS_TOPIC
from edgeml_infra.nag import acknowledge_wildcard_resource
from edgeml_infra.runtime_permissions import RUNTIME_PERMISSIONS, ResourceKind
from edgeml_infra.settings import Settings
from edgeml_infra.stacks.common import bucket_arn, output

THING = "${iot:Connection.Thing.ThingName}"
TES_PRINCIPAL = "credentials.iot.amazonaws.com"


def runtime_resources(stack: Stack, settings: Settings) -> Callable[[ResourceKind], list[str]]:
    """ARNs of the runtime permissions' resources, from the names the other stacks give them."""
    artifacts = bucket_arn(stack, settings.bucket_name("artifacts", stack.account, stack.region))
    captures = bucket_arn(stack, settings.bucket_name("captures", stack.account, stack.region))
    arns = {
        ResourceKind.ARTIFACTS_BUCKET: [artifacts],
        ResourceKind.COMPONENT_ARTIFACTS: [
            f"{artifacts}/{prefix}*" for prefix in settings.component_prefixes
        ],
        ResourceKind.RESULTS_STREAM: [
            stack.format_arn(service="kinesis", resource="stream", resource_name=settings.results_stream)
        ],
        ResourceKind.CAPTURE_OBJECTS: [f"{captures}/{settings.capture_prefix}/*"],
        ResourceKind.GREENGRASS_LOGS: [
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/greengrass/*"
        ],
    }
    return lambda kind: arns[kind]


def core_device_policy(stack: Stack, role_alias_arn: str) -> dict[str, Any]:
    """The minimal policy a nucleus needs (Greengrass DG device-auth, minimal IoT policy), scoped to the
    connecting thing's name, plus publishing the app's own results and health topics."""

    def arn(resource: str) -> str:
        return f"arn:{stack.partition}:iot:{stack.region}:{stack.account}:{resource}"

    own = f"$aws/things/{THING}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Connect",
                "Effect": "Allow",
                "Action": "iot:Connect",
                # The nucleus names its MQTT connections <thing>, then <thing>#2, <thing>#3 ...
                # (aws-greengrass-nucleus mqttclient/MqttClient.java getNewMqttClient).
                "Resource": [arn(f"client/{THING}"), arn(f"client/{THING}#*")],
            },
            {
                "Sid": "NucleusTopics",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": [
                    arn(f"topic/{own}/greengrass/health/json"),
                    arn(f"topic/{own}/greengrassv2/health/json"),
                    arn(f"topic/{own}/jobs/*"),
                    arn(f"topic/{own}/shadow/*"),
                ],
            },
            {
                "Sid": "NucleusSubscriptions",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [arn(f"topicfilter/{own}/jobs/*"), arn(f"topicfilter/{own}/shadow/*")],
            },
            {
                "Sid": "AppTopics",
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": [
                    arn("topic/" + RESULTS_TOPIC.format(thing=THING)),
                    arn("topic/" + HEALTH_TOPIC.format(thing=THING)),
                ],
            },
            {
                "Sid": "DeploymentShadow",
                "Effect": "Allow",
                "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow"],
                "Resource": [arn(f"thing/{THING}")],
            },
            {
                "Sid": "TokenExchange",
                "Effect": "Allow",
                "Action": "iot:AssumeRoleWithCertificate",
                "Resource": role_alias_arn,
            },
            {
                # These data-plane calls take no resource ARN; the service scopes them to the
                # calling core device (DG minimal IoT policy uses "*" for them too).
                "Sid": "GreengrassDataPlane",
                "Effect": "Allow",
                "Action": [
                    "greengrass:GetComponentVersionArtifact",
                    "greengrass:ResolveComponentCandidates",
                    "greengrass:GetDeploymentConfiguration",
                    "greengrass:ListThingGroupsForCoreDevice",
                ],
                "Resource": "*",
            },
        ],
    }


class FleetStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        parent = iot.CfnThingGroup(
            self,
            "ParentGroup",
            thing_group_name=settings.parent_group,
            thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                thing_group_description="Every edgeml core device (each in exactly one ring group)"
            ),
        )
        self.ring_groups: dict[str, iot.CfnThingGroup] = {}
        for order, ring in enumerate(settings.rings, start=1):
            group = iot.CfnThingGroup(
                self,
                f"Ring{order}",
                thing_group_name=settings.ring_group(ring),
                parent_group_name=settings.parent_group,
                thing_group_properties=iot.CfnThingGroup.ThingGroupPropertiesProperty(
                    thing_group_description=f"Rollout ring {order} of {len(settings.rings)}: {ring}"
                ),
            )
            group.node.add_dependency(parent)
            self.ring_groups[ring] = group

        self.token_exchange_role = iam.Role(
            self,
            "TokenExchangeRole",
            assumed_by=iam.ServicePrincipal(TES_PRINCIPAL),
            description="Greengrass core devices' AWS credentials (token exchange service)",
            max_session_duration=Duration.seconds(max(3600, settings.credential_duration_seconds)),
        )
        resolve = runtime_resources(self, settings)
        policy = iam.Policy(self, "TokenExchangeRoleAccess")
        for permission in RUNTIME_PERMISSIONS:
            policy.add_statements(
                iam.PolicyStatement(actions=list(permission.actions), resources=resolve(permission.resource))
            )
        policy.attach_to_role(self.token_exchange_role)
        self._acknowledge_runtime_wildcards(policy, resolve, settings)

        self.role_alias = iot.CfnRoleAlias(
            self,
            "TokenExchangeRoleAlias",
            role_alias=settings.role_alias,
            role_arn=self.token_exchange_role.role_arn,
            credential_duration_seconds=settings.credential_duration_seconds,
        )
        iot.CfnPolicy(
            self,
            "CoreDevicePolicy",
            policy_name=settings.core_policy,
            policy_document=core_device_policy(self, self.role_alias.attr_role_alias_arn),
        )
        output(self, outputs.PARENT_THING_GROUP, settings.parent_group)
        output(self, outputs.RING_THING_GROUPS, {ring: settings.ring_group(ring) for ring in settings.rings})
        output(self, outputs.CORE_DEVICE_POLICY, settings.core_policy)
        output(self, outputs.TOKEN_EXCHANGE_ROLE_ARN, self.token_exchange_role.role_arn)
        output(self, outputs.TOKEN_EXCHANGE_ROLE_ALIAS, settings.role_alias)

    def _acknowledge_runtime_wildcards(
        self, policy: iam.Policy, resolve: Callable[[ResourceKind], list[str]], settings: Settings
    ) -> None:
        """IAM5 findings on object-key and log-group wildcards, each with its reason."""
        reasons = {
            ResourceKind.COMPONENT_ARTIFACTS: (
                "s3:GetObject on the artifact keys of our components (<component>/<version>/...) only: "
                "the nucleus downloads whatever artifact a deployed recipe names, unknown at deploy time."
            ),
            ResourceKind.CAPTURE_OBJECTS: (
                "Stream Manager uploads each captured input under a key the app derives per input; the grant "
                "is PutObject and multipart cleanup under the capture prefix of the capture bucket only."
            ),
            ResourceKind.GREENGRASS_LOGS: (
                "LogManager creates one log group per component (/aws/greengrass/UserComponent/<region>/"
                "<name>, /aws/greengrass/GreengrassSystemComponent/...): the grant is limited to that path."
            ),
        }
        for kind, reason in reasons.items():
            for arn in resolve(kind):
                acknowledge_wildcard_resource(policy, arn, reason)
