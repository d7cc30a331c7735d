"""What several stacks share: stack outputs keyed by edgeml.config.outputs, ARNs of named resources."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import CfnOutput, Stack

from edgeml.config.outputs import Output


def output(stack: Stack, spec: Output, value: Any) -> CfnOutput:
    text = json.dumps(value, sort_keys=True) if spec.json else value
    cfn_output = CfnOutput(stack, f"Output{spec.key}", value=text, description=spec.description)
    cfn_output.override_logical_id(spec.key)  # the OutputKey the CLI looks for
    return cfn_output


def bucket_arn(stack: Stack, name: str) -> str:
    return f"arn:{stack.partition}:s3:::{name}"
