"""cdk-nag 3.x wiring: the AwsSolutions pack on the app, and acknowledgements that carry their reasons."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def check_app(app: App) -> None:
    """Runs the AwsSolutions rules at synth; acknowledged findings land in the templates' Metadata."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """One finding (`AwsSolutions-IAM5[Resource::*]`), with the reason a reviewer reads."""
    Validations.of(construct).acknowledge(Acknowledgment(id=finding, reason=reason))


def rendered(stack: Stack, value: str) -> str:
    """A string as cdk-nag prints it in finding ids: `Ref`s as <Name>, `GetAtt`s as <Logical.Attr>."""

    def flatten(node: Any) -> str:
        if isinstance(node, str):
            return node
        if isinstance(node, dict) and "Fn::Join" in node:
            separator, parts = node["Fn::Join"]
            return str(separator).join(flatten(part) for part in parts)
        if isinstance(node, dict) and "Ref" in node:
            return f"<{node['Ref']}>"
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            return "<" + ".".join(node["Fn::GetAtt"]) + ">"
        raise ValueError(f"cannot render {node!r}")

    return flatten(stack.resolve(value))


def acknowledge_wildcard_resource(construct: IConstruct, resource: str, reason: str) -> None:
    """An AwsSolutions-IAM5 finding on one wildcard resource of `construct`'s policy."""
    stack = Stack.of(construct)
    acknowledge(construct, f"AwsSolutions-IAM5[Resource::{rendered(stack, resource)}]", reason)
