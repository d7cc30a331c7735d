"""The CloudFormation output keys the stacks write and `edgeml config from-stack` reads, written once.

Each key maps to one field of the CLI's configuration (edgeml.config.store.AccountConfig). Values are
strings; the JSON ones carry a list or a mapping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Output:
    key: str  # CloudFormation OutputKey: [A-Za-z0-9]+
    field: str  # AccountConfig field
    description: str
    json: bool = False


ARTIFACTS_BUCKET = Output(
    "ArtifactsBucket", "artifacts_bucket", "S3 bucket of component artifacts and Neo jobs"
)
ACCESS_LOG_BUCKET = Output("AccessLogBucket", "access_log_bucket", "S3 bucket receiving server access logs")
NEO_KEY_PREFIX = Output("NeoKeyPrefix", "neo_key_prefix", "Key prefix of Neo inputs and outputs")
PARENT_THING_GROUP = Output("ParentThingGroup", "parent_thing_group", "Thing group holding every ring")
RING_THING_GROUPS = Output(
    "RingThingGroups", "ring_thing_groups", "Rings in rollout order: JSON {ring: thing group}", json=True
)
CORE_DEVICE_POLICY = Output(
    "CoreDevicePolicy", "core_device_policy", "IoT policy to attach to core certificates"
)
TOKEN_EXCHANGE_ROLE_ARN = Output(
    "TokenExchangeRoleArn", "token_exchange_role_arn", "Greengrass token exchange role"
)
TOKEN_EXCHANGE_ROLE_ALIAS = Output(
    "TokenExchangeRoleAlias", "token_exchange_role_alias", "IoT role alias (installer --tes-role-alias-name)"
)
RESULTS_STREAM = Output("ResultsStream", "results_stream", "Kinesis stream of inference results")
CAPTURE_BUCKET = Output("CaptureBucket", "capture_bucket", "S3 bucket of captured low-confidence inputs")
CAPTURE_KEY_PREFIX = Output("CaptureKeyPrefix", "capture_key_prefix", "Key prefix of captured inputs")
METRIC_NAMESPACE = Output("MetricNamespace", "metric_namespace", "CloudWatch namespace of the health metrics")
HEALTH_ALARMS = Output(
    "HealthAlarms", "health_alarms", "Fleet health alarms: JSON {metric: alarm name}", json=True
)
HEALTH_RULES = Output(
    "HealthRules", "health_rules", "IoT topic rules of the health metrics: JSON list", json=True
)
NEO_ROLE_ARN = Output(
    "NeoRoleArn", "neo_role_arn", "SageMaker Neo execution role (edgeml model compile --neo)"
)

ALL_OUTPUTS: tuple[Output, ...] = (
    ARTIFACTS_BUCKET,
    ACCESS_LOG_BUCKET,
    NEO_KEY_PREFIX,
    PARENT_THING_GROUP,
    RING_THING_GROUPS,
    CORE_DEVICE_POLICY,
    TOKEN_EXCHANGE_ROLE_ARN,
    TOKEN_EXCHANGE_ROLE_ALIAS,
    RESULTS_STREAM,
    CAPTURE_BUCKET,
    CAPTURE_KEY_PREFIX,
    METRIC_NAMESPACE,
    HEALTH_ALARMS,
    HEALTH_RULES,
    NEO_ROLE_ARN,
)
BY_KEY = {output.key: output for output in ALL_OUTPUTS}
