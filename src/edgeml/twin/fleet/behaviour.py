"""What a light fleet's agents do: fleet-wide fault rates and the health each component version shows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class VersionHealth:
    """The health records a device shows while it runs one version of the watched component.

    `fails_deployment`: the new version goes BROKEN during the deployment (the app raises at start), so
    the nucleus rolls the device back and reports FAILED. `crash_after_start`: the deployment SUCCEEDS (the
    process started), then the component crash-loops to BROKEN and the device reports UNHEALTHY with no
    results (semantics notes fact 10: a health gate must watch the device after SUCCEEDED).
    """

    error_rate: float = 0.0  # share of a window's requests answered with an error (NaN outputs: 1.0)
    latency_p99_ms: float = 12.0
    mean_confidence: float = 0.93
    drift_psi: float = 0.02
    requests_per_record: int = 60
    fails_deployment: bool = False
    crash_after_start: bool = False
    # False: the app runs (RUNNING, HEALTHY) but no health record reaches IoT Core (e.g. its IoT Core
    # health topic turned off or refused by a policy): a gate on its metrics must not pass on silence.
    publishes_health: bool = True


HEALTHY = VersionHealth()


@dataclass(frozen=True)
class FleetBehaviour:
    """Per-deployment fault rates (0..1), drawn per (device, revision) from `seed`: reproducible."""

    failure_rate: float = 0.0  # the deployment fails on the device (reported FAILED, rolled back)
    crash_after_start_rate: float = 0.0  # SUCCEEDED, then the component goes BROKEN
    timeout_rate: float = 0.0  # the deployment takes longer than the job's in-progress timeout
    silence_rate: float = 0.0  # the device takes the job, then goes silent for good
    apply_seconds: float = 20.0  # time from taking a job to reporting its outcome
    health_interval_s: float = 60.0  # the app's HealthIntervalS
    seed: int = 0
    watched_component: str = "com.edgeml.model.Digits"
    versions: dict[str, VersionHealth] = field(default_factory=dict)  # watched component version -> health

    def health_of(self, version: str | None) -> VersionHealth:
        return self.versions.get(version or "", HEALTHY)

    def draw(self, thing: str, deployment: str) -> str:
        """`ok`, `fail`, `crash`, `timeout` or `silent` for this device and deployment."""
        digest = hashlib.sha256(f"{self.seed}:{thing}:{deployment}".encode()).digest()
        position = int.from_bytes(digest[:8], "big") / float(1 << 64)
        for outcome, rate in (
            ("fail", self.failure_rate),
            ("crash", self.crash_after_start_rate),
            ("timeout", self.timeout_rate),
            ("silent", self.silence_rate),
        ):
            if position < rate:
                return outcome
            position -= rate
        return "ok"
