"""Artifacts: component artifacts and Neo inputs/outputs, plus the bucket every server access log goes to."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from edgeml.config import outputs
from edgeml_infra.settings import Settings
from edgeml_infra.stacks.common import bucket_arn, output

# Server access log prefixes per source bucket.
ARTIFACTS_LOG_PREFIX = "artifacts/"
CAPTURE_LOG_PREFIX = "captures/"


def secure_bucket(scope: Construct, construct_id: str, **kwargs: Any) -> s3.Bucket:
    """Every bucket here: SSE-S3, public access blocked, TLS only, owner-enforced objects, retained."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        **kwargs,
    )


class ArtifactsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.access_logs = secure_bucket(
            self,
            "AccessLogs",
            bucket_name=settings.bucket_name("access-logs", self.account, self.region),
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
        )
        self.artifacts = secure_bucket(
            self,
            "Artifacts",
            bucket_name=settings.bucket_name("artifacts", self.account, self.region),
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=ARTIFACTS_LOG_PREFIX,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(90),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
        # The capture bucket (results stack) logs here too; its stack cannot add to this bucket's policy.
        capture_bucket = settings.bucket_name("captures", self.account, self.region)
        self.access_logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CaptureBucketAccessLogs",
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[self.access_logs.arn_for_objects(f"{CAPTURE_LOG_PREFIX}*")],
                conditions={
                    "ArnLike": {"aws:SourceArn": bucket_arn(self, capture_bucket)},
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
        output(self, outputs.ARTIFACTS_BUCKET, self.artifacts.bucket_name)
        output(self, outputs.ACCESS_LOG_BUCKET, self.access_logs.bucket_name)
        output(self, outputs.NEO_KEY_PREFIX, settings.neo_prefix)
