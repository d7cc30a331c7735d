"""kill -9 of `edgeml deploy start` mid-ring, then `edgeml deploy resume` in a new process: no duplicate or
lost deployments (the rollout's state is only in AWS: deployment tags and revisions). Wall-clock time: the
twin and a light fleet run in this process, the orchestrator in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from edgeml.deploy.aws import Clients
from edgeml.deploy.clock import WallClock
from edgeml.deploy.orchestrator import Orchestrator
from edgeml.deploy.spec import parse_spec
from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.rules.install import install_health_rules
from edgeml.twin.fleet import Boto3DeviceApi, FleetBehaviour, LightFleet

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]
SUFFIX = "k9res"  # fixed: the same ring sizes every run (one run per process)


def _spec(name: str, version: str, model: str, app: str, parent: str, soak: float) -> dict[str, Any]:
    return {
        "name": name,
        "components": {model: {"version": version}, app: {"version": "1.0.0"}},
        "health": {"metricNamespace": f"EdgeML/K9{SUFFIX}"},
        "pollSeconds": 0.2,
        "rings": [
            {
                "name": ring,
                "parentGroup": parent,
                "share": share,
                "soakSeconds": soak,
                "settleTimeoutSeconds": 60,
                "gate": {"minSucceeded": 1.0, "maxErrorRate": 0.05, "minResultsPerDevice": 1} if soak else {},
            }
            for ring, share in (("canary", 0.3), ("wave", 0.3), ("rest", 0.4))
        ],
    }


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[tuple[CloudEndpoint, dict[str, str]]]:
    with CloudEndpoint(tmp_path / "twin", persist_moto=False) as endpoint:
        env = {**os.environ, **TWIN_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint.endpoint_url}
        yield endpoint, env


@pytest.mark.slow
def test_kill_9_mid_ring_and_resume_deploys_each_ring_once(
    twin: tuple[CloudEndpoint, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, env = twin
    for key in ("AWS_ENDPOINT_URL", *TWIN_CREDENTIALS):
        monkeypatch.setenv(key, env[key])
    kw = {"endpoint_url": endpoint.endpoint_url, "region_name": REGION}
    gg, iot = boto3.client("greengrassv2", **kw), boto3.client("iot", **kw)
    model, app, parent = f"com.example.K9Model{SUFFIX}", f"com.example.K9App{SUFFIX}", f"k9-fleet-{SUFFIX}"
    for name, version in ((model, "1.0.0"), (model, "1.0.1"), (app, "1.0.0")):
        recipe = {"RecipeFormatVersion": "2020-01-25", "ComponentName": name, "ComponentVersion": version}
        gg.create_component_version(inlineRecipe=yaml.safe_dump(recipe).encode())
    install_health_rules(iot, f"k9_{SUFFIX}", f"EdgeML/K9{SUFFIX}", "arn:aws:iam::123456789012:role/r")
    behaviour = FleetBehaviour(apply_seconds=0.3, health_interval_s=0.5, watched_component=model)
    things = [f"k9-{SUFFIX}-{i:03d}" for i in range(12)]
    fleet = LightFleet.of(things, behaviour, Boto3DeviceApi(**kw))
    fleet.provision({parent: things})
    stop = threading.Event()

    def run_fleet() -> None:
        while not stop.wait(0.1):
            fleet.step(time.time())

    runner = threading.Thread(target=run_fleet, daemon=True)
    runner.start()
    try:
        base = parse_spec(_spec(f"k9-base-{SUFFIX}", "1.0.0", model, app, parent, 0), "base.yaml")
        assert Orchestrator(Clients(REGION), base, WallClock()).run().outcome == "completed"
        spec_path = tmp_path / "update.yaml"
        spec_path.write_text(yaml.safe_dump(_spec(f"k9-up-{SUFFIX}", "1.0.1", model, app, parent, 3.0)))
        spec = parse_spec(yaml.safe_load(spec_path.read_text()), str(spec_path))
        wave_arn = Clients(REGION).thing_group_arn(spec.ring("wave").target_group)

        def ours_on_wave() -> list[str]:
            items = gg.list_deployments(targetArn=wave_arn, historyFilter="ALL")["deployments"]
            return [d["deploymentId"] for d in items if d["deploymentName"].startswith(spec.name)]

        command = [sys.executable, "-m", "edgeml.cli", "deploy"]
        child = subprocess.Popen(
            [*command, "start", str(spec_path), "--report-dir", str(tmp_path / "reports")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not ours_on_wave() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert ours_on_wave(), (
            f"the first run never reached the second ring: {child.stderr.read() if child.stderr else ''}"
        )
        os.kill(child.pid, signal.SIGKILL)  # mid-ring: its deployment exists, its soak has not run
        child.wait(10)
        resumed = subprocess.run(
            [*command, "resume", str(spec_path), "--report-dir", str(tmp_path / "reports")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert "completed" in resumed.stdout
        for ring in spec.rings:
            arn = Clients(REGION).thing_group_arn(ring.target_group)
            names = [
                d["deploymentName"]
                for d in gg.list_deployments(targetArn=arn, historyFilter="ALL")["deployments"]
            ]
            assert names.count(f"{spec.name}-{ring.name}") == 1  # none twice, none lost
        time.sleep(0.5)
        assert fleet.versions(model) == {"1.0.1": len(things)}
        assert len(list((tmp_path / "reports").glob("*.html"))) == 1  # the killed run wrote none; resume one
    finally:
        stop.set()
        runner.join(5)
