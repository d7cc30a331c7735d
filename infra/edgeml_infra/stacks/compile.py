"""Compile: the SageMaker Neo execution role, scoped to the Neo prefix of the artifacts bucket."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from edgeml.config import outputs
from edgeml_infra.nag import acknowledge_wildcard_resource
from edgeml_infra.settings import Settings
from edgeml_infra.stacks.common import bucket_arn, output


class CompileStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        artifacts = bucket_arn(self, settings.bucket_name("artifacts", self.account, self.region))
        # What CreateCompilationJob's RoleArn must allow (botocore sagemaker model): read the input, write
        # the compiled model, write logs, publish metrics. edgeml.model.compile.neo writes the input under
        # <neo prefix>/input/ and asks for output under <neo prefix>/output/.
        self.neo_role = iam.Role(
            self,
            "NeoRole",
            description="SageMaker Neo compilation jobs started by edgeml model compile --neo",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}
            ),
        )
        neo_input = f"{artifacts}/{settings.neo_prefix}/input/*"
        neo_output = f"{artifacts}/{settings.neo_prefix}/output/*"
        log_groups = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/CompilationJobs*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        policy = iam.Policy(
            self,
            "NeoAccess",
            statements=[
                iam.PolicyStatement(
                    sid="ReadNeoInput",
                    actions=["s3:GetObject"],
                    resources=[neo_input],
                ),
                iam.PolicyStatement(
                    sid="WriteNeoOutput",
                    actions=["s3:PutObject"],
                    resources=[neo_output],
                ),
                iam.PolicyStatement(
                    sid="JobLogs",
                    actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_groups],
                ),
                iam.PolicyStatement(
                    sid="JobMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
                ),
            ],
        )
        policy.attach_to_role(self.neo_role)
        acknowledge_wildcard_resource(
            policy,
            neo_input,
            "Neo reads the one input object a job names; edgeml content-addresses inputs under this prefix.",
        )
        acknowledge_wildcard_resource(
            policy,
            neo_output,
            "Neo writes the compiled model under the job's output location, inside this prefix only.",
        )
        acknowledge_wildcard_resource(
            policy, log_groups, "SageMaker writes one log stream per compilation job into this log group."
        )
        acknowledge_wildcard_resource(
            policy,
            "*",
            "cloudwatch:PutMetricData has no resource type; the namespace condition keeps it to SageMaker's.",
        )
        output(self, outputs.NEO_ROLE_ARN, self.neo_role.role_arn)
