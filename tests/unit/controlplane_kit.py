"""Shared by the control-plane unit tests: moto's IoT and S3 in-process, a ManualClock, a ControlPlane."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iot.models import iot_backends

from edgeml.twin.cloud.controlplane import ControlPlane
from edgeml.twin.cloud.service import ManualClock

REGION = "us-east-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
BUCKET = "edgeml-artifacts"


def moto_iot(region: str) -> Any:
    return iot_backends[ACCOUNT][region]


@dataclass
class Twin:
    plane: ControlPlane
    clock: ManualClock
    state_dir: Path
    s3: Any
    iot: Any

    def restart(self) -> ControlPlane:
        self.plane.save()
        self.plane = ControlPlane(self.state_dir, self.clock, moto_iot)
        return self.plane

    @property
    def gg(self) -> Any:
        return self.plane.greengrassv2

    def thing(self, name: str, *groups: str) -> str:
        self.iot.create_thing(thingName=name)
        for group in groups:
            self.iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
        return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"

    def group(self, name: str) -> str:
        return str(self.iot.create_thing_group(thingGroupName=name)["thingGroupArn"])

    def publish(self, name: str, version: str, *, artifact: bytes | None = b"payload", **extra: Any) -> str:
        recipe: dict[str, Any] = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": name,
            "ComponentVersion": version,
            "ComponentPublisher": "edgeml",
            "ComponentDescription": f"{name} for tests",
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "echo hi"}}],
            **extra,
        }
        if artifact is not None:
            key = f"{name}/{version}/app.zip"
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=artifact)
            recipe["Manifests"][0]["Artifacts"] = [{"Uri": f"s3://{BUCKET}/{key}"}]
        out = self.gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())
        return str(out["arn"])


_CLIENTS: dict[str, Any] = {}


def _client(service: str) -> Any:
    """One boto3 client per service for all tests (making one costs ~0.3 s; moto's mock intercepts any
    client made after moto was imported, and every `mock_aws()` starts from empty backends)."""
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(service, region_name=REGION)
    return _CLIENTS[service]


def started_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    """For a test module's `twin` fixture: moto's mock in-process (no sockets), a fresh plane in tmp_path."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with mock_aws():
        s3, iot = _client("s3"), _client("iot")
        s3.create_bucket(Bucket=BUCKET)
        clock = ManualClock()
        yield Twin(ControlPlane(tmp_path, clock, moto_iot), clock, tmp_path, s3, iot)
