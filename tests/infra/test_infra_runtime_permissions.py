"""The token exchange role grants exactly the runtime permissions (edgeml_infra/runtime_permissions.py),
and that list covers what the device code and recipes make the core device call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from edgeml_infra.runtime_permissions import RUNTIME_PERMISSIONS, ResourceKind, granted_pairs
from edgeml_infra.stacks.fleet import runtime_resources
from infra_kit import Synthesized

from edgeml.config.healthrule import RESULTS_TOPIC

REPO = Path(__file__).resolve().parents[2]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_pairs(synthesized: Synthesized) -> set[tuple[str, str]]:
    """(action, resource) pairs of every policy attached to the token exchange role."""
    fleet = synthesized.json("Fleet")["Resources"]
    role = next(name for name, body in fleet.items() if body["Type"] == "AWS::IAM::Role")
    pairs = set()
    for body in fleet.values():
        properties = body["Properties"]
        if body["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and {
            "Ref": role
        } in properties.get("Roles", []):
            for statement in as_list(properties["PolicyDocument"]["Statement"]):
                assert statement["Effect"] == "Allow" and "Condition" not in statement
                for action in as_list(statement["Action"]):
                    for resource in as_list(statement["Resource"]):
                        pairs.add((action, json.dumps(resource, sort_keys=True)))
    return pairs


def test_token_exchange_role_grants_every_runtime_permission_and_nothing_more(
    synthesized: Synthesized,
) -> None:
    fleet = synthesized.stacks.fleet
    resolve = runtime_resources(fleet, synthesized.settings)
    expected = {
        (action, json.dumps(fleet.resolve(arn), sort_keys=True)) for action, arn in granted_pairs(resolve)
    }
    assert role_pairs(synthesized) == expected
    # The resources are the concrete names of the other stacks' buckets and stream.
    rendered = {resource for _, resource in expected}
    assert '"arn:aws:s3:::edgeml-artifacts-123456789012-eu-west-1/com.edgeml.*"' in rendered
    assert '"arn:aws:kinesis:eu-west-1:123456789012:stream/edgeml-results"' in rendered
    assert '"arn:aws:s3:::edgeml-captures-123456789012-eu-west-1/captures/*"' in rendered


def test_artifact_downloads_are_covered_for_every_recipe_artifact(synthesized: Synthesized) -> None:
    """The nucleus downloads s3://<bucket>/<key> of each manifest artifact: keys must fall under a prefix
    (gdk and `edgeml publish` replace COMPONENT_NAME with the recipe's ComponentName)."""
    prefixes = synthesized.settings.component_prefixes
    keys = []
    for path in sorted((REPO / "recipes").glob("*.yaml")):
        recipe = yaml.safe_load(path.read_text())
        for manifest in recipe["Manifests"]:
            for artifact in manifest.get("Artifacts", []):
                key = artifact["Uri"].removeprefix("s3://").partition("/")[2]
                keys.append(key.replace("COMPONENT_NAME", recipe["ComponentName"]))
    assert keys and all(key.startswith(prefixes) for key in keys), keys
    download = [p for p in RUNTIME_PERMISSIONS if p.resource is ResourceKind.COMPONENT_ARTIFACTS]
    assert [p.actions for p in download] == [("s3:GetObject",)]


def test_the_app_defaults_match_what_the_role_and_policy_cover(synthesized: Synthesized) -> None:
    """The recipe's capture prefix and IoT Core topic are the ones the stacks grant."""
    recipe = yaml.safe_load((REPO / "recipes" / "com.edgeml.Inference.yaml").read_text())
    defaults = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    assert defaults["CaptureKeyPrefix"] == synthesized.settings.capture_prefix
    assert defaults["IoTCoreTopic"] == RESULTS_TOPIC.format(thing="{iot:thingName}")


def test_stream_exports_the_app_configures_need_exactly_the_listed_stream_manager_actions() -> None:
    """The exporters the app's stream definitions ask for (edgeml_inference.sinks.streammanager)."""
    from edgeml_inference.sinks.streammanager import StreamSpec, stream_definition

    results = stream_definition(StreamSpec("r", 1 << 20, kinesis_stream="edgeml-results"))
    captures = stream_definition(StreamSpec("c", 1 << 20, s3_export=True))
    assert results.export_definition.kinesis[0].kinesis_stream_name == "edgeml-results"
    assert captures.export_definition.s3_task_executor
    by_kind = {p.resource: p.actions for p in RUNTIME_PERMISSIONS}
    assert by_kind[ResourceKind.RESULTS_STREAM] == ("kinesis:PutRecords",)
    assert set(by_kind[ResourceKind.CAPTURE_OBJECTS]) == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    }
