"""A cloud twin on a ManualClock with a light fleet, the health topic rules and two component versions.

Everything the rollout does goes through plain boto3 at the twin's endpoint; the fleet's agents take the
deployments through iot-jobs-data and publish fleet status and health records through iot-data.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from edgeml.deploy.aws import Clients
from edgeml.deploy.spec import RolloutSpec, parse_spec
from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.rules.install import install_health_rules
from edgeml.twin.cloud.service import ManualClock
from edgeml.twin.fleet import Boto3DeviceApi, FleetBehaviour, LightFleet, VersionHealth
from edgeml.twin.fleet.simtime import FleetTime

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]
ROLE = "arn:aws:iam::123456789012:role/edgeml-health-rules"


@dataclass
class World:
    endpoint: CloudEndpoint
    clock: ManualClock
    fleet: LightFleet
    time: FleetTime
    clients: Clients
    suffix: str
    parent: str
    model: str
    app: str
    namespace: str
    canary_group: str

    def spec(self, name: str, version: str, rings: list[dict[str, Any]], **extra: Any) -> RolloutSpec:
        document = {
            "name": f"{name}-{self.suffix}",
            "components": {self.model: {"version": version}, self.app: {"version": "1.0.0"}},
            "health": {"metricNamespace": self.namespace},
            "pollSeconds": 30,
            **extra,
            "rings": rings,
        }
        return parse_spec(document, "spec.yaml")

    def endpoint_client(self, service: str) -> Any:
        return client(self.endpoint, service)

    def versions(self) -> dict[str, int]:
        return self.fleet.versions(self.model)

    def ring_versions(self, things: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for thing in things:
            entry = self.fleet.agents[thing].installed().get(self.model)
            version = entry["version"] if entry else ""
            counts[version] = counts.get(version, 0) + 1
        return counts


def client(endpoint: CloudEndpoint, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint.endpoint_url, region_name=REGION)


def _recipe(name: str, version: str) -> bytes:
    return json.dumps(
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": name,
            "ComponentVersion": version,
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "sleep 1000"}}],
        }
    ).encode()


def rings(w: World, shares: tuple[float, ...] = (0.4, 0.6), **ring: Any) -> list[dict[str, Any]]:
    """A thing-group canary (the kit's first CANARY_DEVICES devices), then share rings of the parent."""
    names = ("wave", "rest", "r4", "r5")
    return [
        {"name": "canary", "thingGroup": w.canary_group, "soakSeconds": 300, **ring},
        *(
            {"name": names[i], "parentGroup": w.parent, "share": share, "soakSeconds": 300, **ring}
            for i, share in enumerate(shares)
        ),
    ]


CANARY_DEVICES = 2


@contextmanager
def world(
    tmp_path: Path,
    devices: int = 20,
    behaviour: FleetBehaviour | None = None,
    versions: dict[str, VersionHealth] | None = None,
) -> Iterator[World]:
    clock = ManualClock()
    # names from the test's id: moto is process-global (unique names) and ring sizes are the same each run
    test_id = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0] or uuid.uuid4().hex
    suffix = hashlib.sha256(test_id.encode()).hexdigest()[:8]
    env = {**TWIN_CREDENTIALS}
    with CloudEndpoint(tmp_path / "twin", clock=clock, persist_moto=False) as endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint.endpoint_url
        with mock.patch.dict(os.environ, env):
            model, app = f"com.example.Model{suffix}", f"com.example.App{suffix}"
            gg = client(endpoint, "greengrassv2")
            for name, version in ((model, "1.0.0"), (model, "1.0.1"), (app, "1.0.0")):
                gg.create_component_version(inlineRecipe=_recipe(name, version))
            namespace = f"EdgeML/Test{suffix}"
            install_health_rules(client(endpoint, "iot"), f"edgeml_{suffix}", namespace, ROLE)
            chosen = behaviour or FleetBehaviour()
            chosen = FleetBehaviour(
                **{**chosen.__dict__, "watched_component": model, "versions": versions or {}}
            )
            api = Boto3DeviceApi(endpoint_url=endpoint.endpoint_url, region_name=REGION)
            things = [f"dev-{suffix}-{i:04d}" for i in range(devices)]
            fleet = LightFleet.of(things, chosen, api)
            parent = f"fleet-{suffix}"
            canary = f"canary-{suffix}"
            fleet.provision({parent: things, canary: things[:CANARY_DEVICES]})
            yield World(
                endpoint,
                clock,
                fleet,
                FleetTime(clock, fleet, tick_s=30),
                Clients(REGION),
                suffix,
                parent,
                model,
                app,
                namespace,
                canary,
            )
