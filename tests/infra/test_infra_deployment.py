"""The optional ring deployment: one AWS::GreengrassV2::Deployment from the rollout spec, named and
identified by a hash of its content, retained by CloudFormation, valid for cfn-lint and cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import App
from aws_cdk.assertions import Template
from edgeml_infra.application import cdk_json_context
from edgeml_infra.nag import check_app
from edgeml_infra.settings import SettingsError
from edgeml_infra.stacks.deployment import RingDeploymentStack
from infra_kit import REGION

pytest.importorskip("edgeml.deploy.spec", reason="the rollout spec reader (edgeml.deploy) is not installed")

SPEC: dict[str, Any] = {
    "name": "digits-1-0-1",
    "components": {
        "com.edgeml.model.Digits": {"version": "1.0.1"},
        "com.edgeml.Inference": {
            "version": "1.0.0",
            "configurationUpdate": {"merge": {"HealthIntervalS": 30}, "reset": ["/CaptureBucket"]},
        },
    },
    "deploymentPolicies": {
        "failureHandlingPolicy": "ROLLBACK",
        "componentUpdatePolicy": {"action": "NOTIFY_COMPONENTS", "timeoutInSeconds": 60},
    },
    "rings": [
        {
            "name": "canary",
            "thingGroup": "edgeml-ring-canary",
            "iotJobConfiguration": {
                "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
                "abortConfig": {
                    "criteriaList": [
                        {
                            "failureType": "FAILED",
                            "action": "CANCEL",
                            "thresholdPercentage": 10,
                            "minNumberOfExecutedThings": 1,
                        }
                    ]
                },
            },
        },
        {"name": "rest", "parentGroup": "edgeml-fleet", "share": 1.0},
    ],
}


def build(tmp_path: Path, spec: dict[str, Any], ring: str = "canary") -> tuple[App, RingDeploymentStack]:
    """The stack alone (construction is quick; synthesis is what takes seconds)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(spec))
    app = App(context=cdk_json_context(), outdir=str(tmp_path / "cdk.out"))
    stack = RingDeploymentStack(
        app, "Edgeml-Deployment-canary", path, ring, env={"account": "123456789012", "region": REGION}
    )
    return app, stack


def synth(
    tmp_path: Path, spec: dict[str, Any], ring: str = "canary"
) -> tuple[RingDeploymentStack, dict[str, Any]]:
    """Synthesised with cdk-nag on (a finding fails the synth)."""
    app, stack = build(tmp_path, spec, ring)
    check_app(app)
    template: dict[str, Any] = Template.from_stack(stack).to_json()
    return stack, template


@pytest.mark.slow
def test_the_ring_deployment_carries_the_specs_components_policies_and_job_configuration(
    tmp_path: Path,
) -> None:
    stack, template = synth(tmp_path, SPEC)
    ((name, resource),) = template["Resources"].items()
    assert resource["Type"] == "AWS::GreengrassV2::Deployment"
    assert name == f"Deployment{stack.content_hash}"
    assert resource["DeletionPolicy"] == "Retain" and resource["UpdateReplacePolicy"] == "Retain"
    properties = resource["Properties"]
    assert properties["TargetArn"] == "arn:aws:iot:eu-west-1:123456789012:thinggroup/edgeml-ring-canary"
    assert properties["DeploymentName"] == f"digits-1-0-1-canary-{stack.content_hash}"
    assert properties["Components"] == {
        "com.edgeml.Inference": {
            "ComponentVersion": "1.0.0",
            "ConfigurationUpdate": {
                "Merge": json.dumps({"HealthIntervalS": 30}),
                "Reset": ["/CaptureBucket"],
            },
        },
        "com.edgeml.model.Digits": {"ComponentVersion": "1.0.1"},
    }
    assert properties["DeploymentPolicies"] == {
        "FailureHandlingPolicy": "ROLLBACK",
        "ComponentUpdatePolicy": {"Action": "NOTIFY_COMPONENTS", "TimeoutInSeconds": 60},
    }
    assert properties["IotJobConfiguration"]["AbortConfig"]["CriteriaList"][0]["ThresholdPercentage"] == 10
    from cfnlint.api import lint

    matches = [m for m in lint(json.dumps(template), regions=[REGION]) if m.rule.id[0] in "EW"]
    assert not matches, "; ".join(str(m) for m in matches)


def test_a_changed_spec_is_a_new_resource_and_the_same_spec_the_same(tmp_path: Path) -> None:
    _, first = build(tmp_path / "a", SPEC)
    _, again = build(tmp_path / "b", SPEC)
    bumped = json.loads(json.dumps(SPEC))
    bumped["components"]["com.edgeml.model.Digits"]["version"] = "1.0.2"
    _, changed = build(tmp_path / "c", bumped)
    assert first.content_hash == again.content_hash != changed.content_hash
    names = [stack.resolve(stack.deployment.deployment_name) for stack in (first, again, changed)]
    assert names[0] == names[1] != names[2]
    logical = [stack.get_logical_id(stack.deployment) for stack in (first, again, changed)]
    assert logical[0] == logical[1] != logical[2] == f"Deployment{changed.content_hash}"


def test_a_share_ring_is_refused_naming_why(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ring 'rest' is a share of edgeml-fleet"):
        build(tmp_path, SPEC, ring="rest")
