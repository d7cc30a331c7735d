"""Every AWS action a core device makes at run time with the token exchange role's credentials.

The fleet stack turns this list into the token exchange role's policy, and tests/infra check that the role
grants exactly these (action, resource) pairs and nothing more. Each entry says who calls it and where
that is written down. Resources are symbolic (`ResourceKind`); `resolve` gives their ARNs.

Deliberately absent: `cloudwatch:PutMetricData` (no component calls CloudWatch; health metrics reach
CloudWatch through the IoT topic rules, whose own role may put them in our namespace only) and
`iot:DescribeCertificate` (only nucleus 2.4.x needs it; our recipes require >= 2.6.0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class ResourceKind(Enum):
    ARTIFACTS_BUCKET = "the artifacts bucket"
    COMPONENT_ARTIFACTS = "component artifact objects (<bucket>/<component prefix>*)"
    RESULTS_STREAM = "the results Kinesis stream"
    CAPTURE_OBJECTS = "captured-input objects (<capture bucket>/<capture prefix>/*)"
    GREENGRASS_LOGS = "log groups and streams under /aws/greengrass/"


@dataclass(frozen=True)
class RuntimePermission:
    caller: str
    actions: tuple[str, ...]
    resource: ResourceKind
    source: str


RUNTIME_PERMISSIONS: tuple[RuntimePermission, ...] = (
    RuntimePermission(
        caller="nucleus (artifact download)",
        actions=("s3:GetBucketLocation",),
        resource=ResourceKind.ARTIFACTS_BUCKET,
        source="aws-greengrass-nucleus componentmanager/builtins/S3Downloader.java getRegionClientForBucket",
    ),
    RuntimePermission(
        caller="nucleus (artifact download)",
        # HeadObject (download size) and ranged GetObject are both authorised by s3:GetObject.
        actions=("s3:GetObject",),
        resource=ResourceKind.COMPONENT_ARTIFACTS,
        source="aws-greengrass-nucleus componentmanager/builtins/S3Downloader.java download, getDownloadSize",
    ),
    RuntimePermission(
        caller="aws.greengrass.StreamManager (Kinesis export of the results stream)",
        actions=("kinesis:PutRecords",),
        resource=ResourceKind.RESULTS_STREAM,
        source="edgeml_inference/sinks/streammanager.py KinesisConfig; DG stream-export-configurations",
    ),
    RuntimePermission(
        caller="aws.greengrass.StreamManager (S3 export tasks of the capture stream)",
        actions=("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
        resource=ResourceKind.CAPTURE_OBJECTS,
        source="edgeml_inference/sinks/streammanager.py S3ExportTaskExecutorConfig; DG stream-export-configs",
    ),
    RuntimePermission(
        caller="aws.greengrass.LogManager (optional log upload)",
        actions=(
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
        ),
        resource=ResourceKind.GREENGRASS_LOGS,
        source="DG device-service-role (GreengrassV2TokenExchangeRoleAccess), log-manager-component",
    ),
)


def granted_pairs(resolve: Callable[[ResourceKind], list[str]]) -> set[tuple[str, str]]:
    """Every (action, resource ARN) pair the list asks for, with `resolve` turning kinds into ARNs."""
    return {
        (action, arn)
        for permission in RUNTIME_PERMISSIONS
        for action in permission.actions
        for arn in resolve(permission.resource)
    }
