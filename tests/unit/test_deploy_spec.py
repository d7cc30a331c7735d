"""The rollout spec: every refusal is one line naming the file and the key; what it accepts it keeps."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edgeml.deploy.errors import SpecInvalid
from edgeml.deploy.spec import load_spec, parse_spec

GOOD: dict[str, Any] = {
    "name": "digits-1-0-1",
    "components": {
        "com.edgeml.model.Digits": {"version": "1.0.1", "configurationUpdate": {"merge": {"Threshold": 0.5}}},
        "com.edgeml.Inference": {"version": "1.2.0"},
    },
    "deploymentPolicies": {"failureHandlingPolicy": "ROLLBACK"},
    "rings": [
        {"name": "canary", "thingGroup": "edgeml-ring-canary", "gate": {"maxErrorRate": 0.02}},
        {
            "name": "wave",
            "parentGroup": "edgeml-fleet",
            "share": 0.25,
            "iotJobConfiguration": {
                "jobExecutionsRolloutConfig": {
                    "exponentialRate": {
                        "baseRatePerMinute": 5,
                        "incrementFactor": 1.5,
                        "rateIncreaseCriteria": {"numberOfSucceededThings": 5},
                    },
                    "maximumPerMinute": 50,
                },
                "abortConfig": {
                    "criteriaList": [
                        {
                            "failureType": "ALL",
                            "action": "CANCEL",
                            "thresholdPercentage": 12.5,
                            "minNumberOfExecutedThings": 10,
                        }
                    ]
                },
                "timeoutConfig": {"inProgressTimeoutInMinutes": 30},
            },
        },
        {"name": "rest", "parentGroup": "edgeml-fleet", "share": 0.75, "manualPromotion": True},
    ],
}


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


_DELETE = object()


def test_a_good_spec_keeps_every_setting() -> None:
    spec = parse_spec(GOOD, "spec.yaml")
    assert [r.name for r in spec.rings] == ["canary", "wave", "rest"]
    assert spec.rings[0].target_group == "edgeml-ring-canary"
    assert spec.rings[1].target_group == "edgeml-fleet-wave"
    assert spec.rings[1].job_configuration == GOOD["rings"][1]["iotJobConfiguration"]
    assert spec.rings[2].manual_promotion and spec.rings[0].gate.max_error_rate == 0.02
    components = spec.deployment_components()
    assert components["com.edgeml.model.Digits"] == {
        "componentVersion": "1.0.1",
        "configurationUpdate": {"merge": '{"Threshold": 0.5}'},
    }
    assert spec.deployment_policies == {"failureHandlingPolicy": "ROLLBACK"}


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (["rings", 0, "gate", "maxErrorRate"], 1.5, "rings[0].gate.maxErrorRate"),
        (["rings", 0, "gate", "minMeanConfidence"], -0.1, "rings[0].gate.minMeanConfidence"),
        (["rings", 0, "gate", "maxLatencyP99Ms"], 0, "rings[0].gate.maxLatencyP99Ms"),
        (["rings", 0, "gate", "minResultsPerDevice"], -1, "rings[0].gate.minResultsPerDevice"),
        (["rings", 1, "share"], 0, "rings[1].share"),
        (["rings", 0, "gate", "maxErrorRat"], 0.1, "rings[0].gate.maxErrorRat"),
        (["rings", 0, "soakSeconds"], -5, "rings[0].soakSeconds"),
        (
            ["rings", 1, "iotJobConfiguration", "timeoutConfig", "inProgressTimeoutInMinutes"],
            10081,
            "rings[1].iotJobConfiguration.timeoutConfig.inProgressTimeoutInMinutes",
        ),
        (
            [
                "rings",
                1,
                "iotJobConfiguration",
                "jobExecutionsRolloutConfig",
                "exponentialRate",
                "incrementFactor",
            ],
            1.25,
            "incrementFactor",
        ),
        (
            ["rings", 1, "iotJobConfiguration", "abortConfig", "criteriaList", 0, "thresholdPercentage"],
            12.345,
            "criteriaList[0].thresholdPercentage",
        ),
        (
            ["components", "com.edgeml.Inference", "version"],
            "1.2",
            "Inference.version: '1.2' is not a semantic",
        ),
        (["components"], {}, "components"),
        (["rings"], [], "rings"),
        (["rings", 0, "name"], _DELETE, "rings[0].name"),
        (
            ["deploymentPolicies", "failureHandlingPolicy"],
            "RETRY",
            "deploymentPolicies.failureHandlingPolicy",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(path: list[str | int], value: Any, named: str) -> None:
    with pytest.raises(SpecInvalid) as refused:
        parse_spec(_with(path, value), "spec.yaml")
    message = str(refused.value)
    assert message.startswith("spec.yaml: ") and named in message and "\n" not in message


def test_rings_whose_shares_of_one_parent_add_up_to_more_than_all_overlap() -> None:
    with pytest.raises(SpecInvalid, match=r"rings\[2\]\.share: .*overlap.*1\.05"):
        parse_spec(_with(["rings", 2, "share"], 0.8), "spec.yaml")


def test_two_rings_on_one_thing_group_overlap() -> None:
    document = _with(["rings", 1], {"name": "again", "thingGroup": "edgeml-ring-canary"})
    with pytest.raises(SpecInvalid, match="rings 'canary' and 'again' overlap"):
        parse_spec(document, "spec.yaml")


def test_a_ring_that_is_also_the_parent_of_share_rings_is_refused() -> None:
    document = _with(["rings", 0, "thingGroup"], "edgeml-fleet")
    with pytest.raises(SpecInvalid, match="edgeml-fleet is a ring and the parent"):
        parse_spec(document, "spec.yaml")


@pytest.mark.parametrize(
    "ring",
    [
        {"name": "both", "thingGroup": "g", "parentGroup": "p", "share": 0.1},
        {"name": "neither"},
        {"name": "halfway", "parentGroup": "p"},
    ],
)
def test_a_ring_needs_exactly_one_kind_of_target(ring: dict[str, Any]) -> None:
    with pytest.raises(SpecInvalid, match=r"rings\[0\]"):
        parse_spec({**GOOD, "rings": [ring]}, "spec.yaml")


def test_ring_names_are_unique() -> None:
    with pytest.raises(SpecInvalid, match=r"rings\[2\]\.name: ring 'canary' is named twice"):
        parse_spec(_with(["rings", 2, "name"], "canary"), "spec.yaml")


def test_a_spec_file_that_is_not_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\ncomponents: [\n")
    with pytest.raises(SpecInvalid, match=r"spec\.yaml: not valid YAML \(line \d+\)"):
        load_spec(path)
    with pytest.raises(SpecInvalid, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_the_digest_changes_with_the_spec_and_only_with_it() -> None:
    first, again = parse_spec(GOOD, "a.yaml"), parse_spec(copy.deepcopy(GOOD), "b.yaml")
    changed = parse_spec(_with(["rings", 0, "gate", "maxErrorRate"], 0.03), "a.yaml")
    assert first.digest == again.digest != changed.digest
