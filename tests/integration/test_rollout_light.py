"""Staged rollouts against a light fleet on the cloud twin (injected time): promote, gate, roll back."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeml.deploy.errors import GateFailed
from edgeml.deploy.orchestrator import Orchestrator
from edgeml.twin.fleet import VersionHealth
from tests.integration.rollout_kit import World, rings, world

GATE = {
    "minSucceeded": 1.0,
    "maxBroken": 0.0,
    "maxUnhealthy": 0.0,
    "maxErrorRate": 0.05,
    "maxLatencyP99Ms": 100,
    "minMeanConfidence": 0.6,
    "maxDriftPsi": 0.25,
    "minResultsPerDevice": 60,
}


def _baseline(w: World) -> None:
    spec = w.spec("base", "1.0.0", rings(w, soakSeconds=0))
    assert Orchestrator(w.clients, spec, w.time).run().outcome == "completed"
    assert w.versions() == {"1.0.0": len(w.fleet.agents)}


def test_a_good_version_is_promoted_through_every_ring(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        _baseline(w)
        spec = w.spec("good", "1.0.1", rings(w, gate=GATE))
        record = Orchestrator(w.clients, spec, w.time).run()
        assert record.outcome == "completed"
        assert w.versions() == {"1.0.1": len(w.fleet.agents)}
        assert [r for r, g in record.gates.items() if g.passed] == ["canary", "wave", "rest"]


BAD_VERSIONS = {
    "nan_outputs": (VersionHealth(error_rate=1.0), "errorRate"),
    "raises_at_start": (VersionHealth(fails_deployment=True), "succeeded"),
    "crash_loop_after_start": (VersionHealth(crash_after_start=True), "broken"),
    "confidence_collapse": (VersionHealth(mean_confidence=0.2), "meanConfidence"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_VERSIONS))
def test_a_bad_version_trips_the_canary_gate_and_only_the_canary_is_rolled_back(
    tmp_path: Path, case: str
) -> None:
    health, metric = BAD_VERSIONS[case]
    with world(tmp_path, devices=12, versions={"1.0.1": health}) as w:
        _baseline(w)
        spec = w.spec("bad", "1.0.1", rings(w, gate=GATE))
        orchestrator = Orchestrator(w.clients, spec, w.time)
        with pytest.raises(GateFailed) as failed:
            orchestrator.run()
        record = orchestrator.record
        canary = record.plan.rings[0].devices if record.plan else []
        message = str(failed.value)
        assert "ring canary" in message and metric in message and canary[0] in message
        assert record.rolled_back == ["canary"]
        w.time.sleep(300)  # the rollback deployment reaches the canary devices
        assert w.versions() == {"1.0.0": len(w.fleet.agents)}
        gg = w.endpoint_client("greengrassv2")
        for group in (f"{w.parent}-wave", f"{w.parent}-rest"):
            arn = w.clients.thing_group_arn(group)
            names = [
                d["deploymentName"]
                for d in gg.list_deployments(targetArn=arn, historyFilter="ALL")["deployments"]
            ]
            assert names == [f"base-{w.suffix}-{group.rsplit('-', 1)[-1]}"]
