"""Staged rollouts against a light fleet on the cloud twin (injected time): promote, gate, roll back."""

from __future__ import annotations

from pathlib import Path

from edgeml.deploy.orchestrator import Orchestrator
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
    spec = w.spec("base", "1.0.0", rings(w.parent, soakSeconds=0))
    assert Orchestrator(w.clients, spec, w.time).run().outcome == "completed"
    assert w.versions() == {"1.0.0": len(w.fleet.agents)}


def test_a_good_version_is_promoted_through_every_ring(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        _baseline(w)
        spec = w.spec("good", "1.0.1", rings(w.parent, gate=GATE))
        record = Orchestrator(w.clients, spec, w.time).run()
        assert record.outcome == "completed"
        assert w.versions() == {"1.0.1": len(w.fleet.agents)}
        assert [r for r, g in record.gates.items() if g.passed] == ["canary", "wave", "rest"]
