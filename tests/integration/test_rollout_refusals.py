"""`edgeml deploy start` refuses a bad spec before anything is deployed: one `error:` line naming the key,
exit 1, and no deployment, thing group or membership created. The command runs in-process through the
CLI's own `run_app` against the cloud twin (plain boto3 via AWS_ENDPOINT_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
import yaml
from cloud_twin_harness import run_deploy

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    suffix = uuid.uuid4().hex[:8]
    with CloudEndpoint(tmp_path_factory.mktemp("twin"), persist_moto=False) as endpoint:
        env = {**TWIN_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint.endpoint_url}
        with mock.patch.dict(os.environ, env):
            iot, gg = (
                boto3.client("iot", region_name=REGION),
                boto3.client("greengrassv2", region_name=REGION),
            )
            name = f"com.example.Ref{suffix}"
            recipe = {"RecipeFormatVersion": "2020-01-25", "ComponentName": name, "ComponentVersion": "1.0.0"}
            gg.create_component_version(inlineRecipe=yaml.safe_dump(recipe).encode())
            groups = {"lab": f"lab-{suffix}", "fleet": f"fleet-{suffix}", "empty": f"empty-{suffix}"}
            for group in groups.values():
                iot.create_thing_group(thingGroupName=group)
            for i in range(6):
                iot.create_thing(thingName=f"t{i}-{suffix}")
                iot.add_thing_to_thing_group(thingGroupName=groups["fleet"], thingName=f"t{i}-{suffix}")
            iot.add_thing_to_thing_group(thingGroupName=groups["lab"], thingName=f"t0-{suffix}")
            yield {"iot": iot, "gg": gg, "component": name, "groups": groups, "suffix": suffix}


def _spec(account: dict[str, Any], **changes: Any) -> dict[str, Any]:
    groups = account["groups"]
    spec: dict[str, Any] = {
        "name": f"refused-{account['suffix']}",
        "components": {account["component"]: {"version": "1.0.0"}},
        "rings": [
            {"name": "canary", "thingGroup": groups["lab"]},
            {"name": "rest", "parentGroup": groups["fleet"], "share": 1.0},
        ],
    }
    spec.update(changes)
    return spec


CASES = {
    "unknown_component": (
        lambda a: _spec(a, components={"com.example.Nope": {"version": "1.0.0"}}),
        "components.com.example.Nope.version: component com.example.Nope version 1.0.0 does not exist",
    ),
    "unknown_version": (
        lambda a: _spec(a, components={a["component"]: {"version": "9.9.9"}}),
        "version 9.9.9 does not exist",
    ),
    "empty_ring": (
        lambda a: _spec(a, rings=[{"name": "canary", "thingGroup": a["groups"]["empty"]}]),
        "ring 'canary' is empty",
    ),
    "overlapping_rings": (
        lambda a: _spec(
            a,
            rings=[
                {"name": "canary", "thingGroup": a["groups"]["lab"]},
                {"name": "all", "thingGroup": a["groups"]["fleet"]},
            ],
        ),
        "'canary' and 'all' overlap: thing t0-",
    ),
    "threshold_out_of_range": (
        lambda a: _spec(
            a, rings=[{"name": "canary", "thingGroup": a["groups"]["lab"], "gate": {"maxBroken": 2}}]
        ),
        "rings[0].gate.maxBroken: 2 is greater than the maximum of 1",
    ),
    "missing_group": (
        lambda a: _spec(a, rings=[{"name": "canary", "thingGroup": "no-such-group"}]),
        "rings[0].thingGroup: thing group no-such-group does not exist",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_spec_is_refused_before_anything_is_deployed(
    account: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, expected = CASES[case]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(make(account)))
    assert run_deploy("start", str(path), "--report-dir", str(tmp_path / "reports")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: ") and expected in err and "\n" not in err
    gg, iot = account["gg"], account["iot"]
    assert gg.list_deployments(historyFilter="ALL")["deployments"] == []
    groups = {
        g["groupName"] for g in iot.list_thing_groups()["thingGroups"] if account["suffix"] in g["groupName"]
    }
    assert groups == set(account["groups"].values())  # no ring group made (moto's state is process-wide)
    assert not (tmp_path / "reports").exists()


def test_plan_prints_each_ring_and_deploys_nothing(
    account: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec(account)))
    assert run_deploy("plan", str(path)) == 0
    out = capsys.readouterr().out
    assert (
        "canary: 1 devices" in out
        and "rest: 5 devices" in out
        and f"{account['component']} (none) -> 1.0.0" in out
    )
    assert account["gg"].list_deployments(historyFilter="ALL")["deployments"] == []
