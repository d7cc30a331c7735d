"""A staged rollout on nucleus device twins (real processes per device, src/edgeml/twin/device/nucleus/):
a good version goes through three rings; a version whose Run crash-loops after start (the nucleus reports
the deployment SUCCEEDED or FAILED, then the component is BROKEN) trips the canary gate, the canary is
rolled back and the other rings never see it. Wall-clock time; gates on device state (these components
publish no health records: the light-fleet tests cover the health-record checks)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from edgeml.deploy.aws import Clients
from edgeml.deploy.clock import WallClock
from edgeml.deploy.errors import GateFailed
from edgeml.deploy.orchestrator import Orchestrator
from edgeml.deploy.spec import RolloutSpec, parse_spec
from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.device.nucleus import DeviceFleet
from edgeml.twin.device.nucleus.fleet import cloud_client, provision

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]
DEVICES = 6
GATE = {"minSucceeded": 1.0, "maxBroken": 0.0, "maxUnhealthy": 0.0}


def _recipe(name: str, version: str, run: str) -> bytes:
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": run}}],
    }
    return yaml.safe_dump(recipe).encode()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[dict[str, Any]]:
    # from the test's id: unique in moto's process-wide state, and the same ring sizes every run
    test_id = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0] or uuid.uuid4().hex
    suffix = hashlib.sha256(test_id.encode()).hexdigest()[:6]
    with CloudEndpoint(tmp_path / "cloud", persist_moto=False) as cloud:
        url = cloud.endpoint_url
        gg = cloud_client("greengrassv2", url)
        model = f"com.example.Twin{suffix}"
        gg.create_component_version(inlineRecipe=_recipe(model, "1.0.0", "sleep 3600"))
        gg.create_component_version(inlineRecipe=_recipe(model, "1.0.1", "sleep 3600"))
        gg.create_component_version(inlineRecipe=_recipe(model, "1.0.2", "sleep 1; exit 1"))
        parent, canary = f"twins-{suffix}", f"twins-canary-{suffix}"
        with (
            DeviceFleet(
                url, tmp_path / "devices", DEVICES, groups=[parent], prefix=f"core-{suffix}"
            ) as devices,
            mock.patch.dict(os.environ, {**TWIN_CREDENTIALS, "AWS_ENDPOINT_URL": url}),
        ):
            things = [d.thing_name for d in devices.devices]
            provision(url, things[0], [canary])
            yield {"url": url, "model": model, "parent": parent, "canary": canary, "things": things}


def _spec(f: dict[str, Any], name: str, version: str, soak: float) -> RolloutSpec:
    rings = [
        {"name": "canary", "thingGroup": f["canary"]},
        {"name": "wave", "parentGroup": f["parent"], "share": 0.4},
        {"name": "rest", "parentGroup": f["parent"], "share": 0.6},
    ]
    for ring in rings:
        ring.update({"soakSeconds": soak, "settleTimeoutSeconds": 120, "gate": GATE if soak else {}})
    document = {
        "name": name,
        "components": {f["model"]: {"version": version}},
        "pollSeconds": 0.5,
        "rings": rings,
    }
    return parse_spec(document, f"{name}.yaml")


def _installed(f: dict[str, Any]) -> dict[str, str]:
    gg = cloud_client("greengrassv2", f["url"])
    out = {}
    for thing in f["things"]:
        listed = gg.list_installed_components(coreDeviceThingName=thing)["installedComponents"]
        out[thing] = next((c["componentVersion"] for c in listed if c["componentName"] == f["model"]), "")
    return out


@pytest.mark.slow
def test_device_twins_take_a_good_version_through_every_ring_and_a_crash_loop_is_stopped_at_the_canary(
    fleet: dict[str, Any],
) -> None:
    clients = Clients(REGION)
    assert (
        Orchestrator(clients, _spec(fleet, "twin-base", "1.0.0", 0), WallClock()).run().outcome == "completed"
    )
    assert set(_installed(fleet).values()) == {"1.0.0"}
    good = Orchestrator(clients, _spec(fleet, "twin-good", "1.0.1", 3), WallClock()).run()
    assert good.outcome == "completed" and all(g.passed for g in good.gates.values())
    assert set(_installed(fleet).values()) == {"1.0.1"}
    bad = Orchestrator(clients, _spec(fleet, "twin-bad", "1.0.2", 8), WallClock())
    with pytest.raises(GateFailed, match="stopped at ring canary"):
        bad.run()
    assert bad.record.rolled_back == ["canary"]
    gg = cloud_client("greengrassv2", fleet["url"])
    for ring in ("wave", "rest"):
        arn = clients.thing_group_arn(bad.spec.ring(ring).target_group)
        names = [
            d["deploymentName"]
            for d in gg.list_deployments(targetArn=arn, historyFilter="ALL")["deployments"]
        ]
        assert f"twin-bad-{ring}" not in names
    assert bad.record.rollbacks["canary"] == {"SUCCEEDED": 1}  # followed until the canary's device had it
    installed = _installed(fleet)
    assert installed[fleet["things"][0]] == "1.0.1" and set(installed.values()) == {"1.0.1"}
