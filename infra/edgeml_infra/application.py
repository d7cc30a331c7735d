"""Builds the app's stacks from Settings (infra/app.py is the `cdk` entry point; tests call this too)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Stack, Tags

from edgeml_infra.nag import check_app
from edgeml_infra.settings import Settings
from edgeml_infra.stacks.artifacts import ArtifactsStack
from edgeml_infra.stacks.compile import CompileStack
from edgeml_infra.stacks.fleet import FleetStack
from edgeml_infra.stacks.health import HealthStack
from edgeml_infra.stacks.results import ResultsStack


@dataclass(frozen=True)
class EdgemlStacks:
    artifacts: ArtifactsStack
    fleet: FleetStack
    results: ResultsStack
    health: HealthStack
    compile: CompileStack

    def all(self) -> tuple[Stack, ...]:
        return (self.artifacts, self.fleet, self.results, self.health, self.compile)


CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """The context cdk.json gives the `cdk` CLI (feature flags, `edgeml` settings), for in-process apps."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    return context


def environment(settings: Settings) -> Environment | None:
    """Settings first, then the CDK CLI's defaults; none at all synthesises environment-agnostic stacks."""
    account = settings.account or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = settings.region or os.environ.get("CDK_DEFAULT_REGION")
    if account is None and region is None:
        return None
    return Environment(account=account, region=region)


def build(app: App, settings: Settings, nag: bool = True) -> EdgemlStacks:
    env = environment(settings)
    artifacts = ArtifactsStack(
        app,
        settings.stack_name("Artifacts"),
        settings,
        env=env,
        description="edgeml: component artifacts, Neo jobs and access logs",
    )
    fleet = FleetStack(
        app,
        settings.stack_name("Fleet"),
        settings,
        env=env,
        description="edgeml: ring thing groups, core-device policy, token exchange role alias",
    )
    results = ResultsStack(
        app,
        settings.stack_name("Results"),
        settings,
        env=env,
        description="edgeml: results stream and captured inputs",
    )
    # Server access logging is configured against the log bucket, which must exist first.
    results.add_stack_dependency(artifacts)
    health = HealthStack(
        app,
        settings.stack_name("Health"),
        settings,
        env=env,
        description="edgeml: health records to CloudWatch metrics, fleet health alarms",
    )
    compile_stack = CompileStack(
        app,
        settings.stack_name("Compile"),
        settings,
        env=env,
        description="edgeml: SageMaker Neo execution role",
    )
    stacks = EdgemlStacks(artifacts, fleet, results, health, compile_stack)
    if settings.deployment is not None:
        from edgeml_infra.stacks.deployment import RingDeploymentStack

        spec, ring = settings.deployment
        deployment = RingDeploymentStack(
            app,
            settings.stack_name(f"Deployment-{ring}"),
            Path(spec),
            ring,
            env=env,
            description=f"edgeml: ring {ring} deployment from {Path(spec).name}",
        )
        deployment.add_stack_dependency(fleet)  # the ring's thing group
        Tags.of(deployment).add("edgeml:prefix", settings.prefix)
    for stack in stacks.all():
        Tags.of(stack).add("edgeml:prefix", settings.prefix)
    if nag:
        check_app(app)
    return stacks
