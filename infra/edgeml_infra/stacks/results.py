"""Results: the Kinesis stream Stream Manager exports results to, and the bucket of captured inputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_s3 as s3
from constructs import Construct

from edgeml.config import outputs
from edgeml_infra.nag import acknowledge
from edgeml_infra.settings import Settings
from edgeml_infra.stacks.artifacts import CAPTURE_LOG_PREFIX, secure_bucket
from edgeml_infra.stacks.common import output


class ResultsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # SSE with the AWS managed key aws/kinesis: producers need no KMS permission (KDS1, KDS3).
        self.stream = kinesis.Stream(
            self,
            "Results",
            stream_name=settings.results_stream,
            encryption=kinesis.StreamEncryption.MANAGED,
            stream_mode=kinesis.StreamMode.PROVISIONED,
            shard_count=1,
            retention_period=Duration.hours(settings.results_retention_hours),
        )
        access_logs = s3.Bucket.from_bucket_name(
            self, "AccessLogs", settings.bucket_name("access-logs", self.account, self.region)
        )
        self.captures = secure_bucket(
            self,
            "Captures",
            bucket_name=settings.bucket_name("captures", self.account, self.region),
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=CAPTURE_LOG_PREFIX,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-captures",
                    prefix=f"{settings.capture_prefix}/",
                    expiration=Duration.days(settings.capture_retention_days),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
        )
        acknowledge(
            self.captures,
            "@aws-cdk/aws-s3:accessLogsPolicyNotAdded",
            "The log bucket lives in the artifacts stack, whose bucket policy grants logging.s3.amazonaws."
            "com PutObject under captures/ for this bucket (statement CaptureBucketAccessLogs).",
        )
        output(self, outputs.RESULTS_STREAM, self.stream.stream_name)
        output(self, outputs.CAPTURE_BUCKET, self.captures.bucket_name)
        output(self, outputs.CAPTURE_KEY_PREFIX, settings.capture_prefix)
