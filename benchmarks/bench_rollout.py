"""Staged rollouts: planning 10,000 devices in 5 rings, and light fleets of 1,000 and 10,000 agents rolled
out in 3 rings with 2% deployment failures on injected time.

Everything goes through plain boto3 on loopback to one in-process cloud twin (ManualClock): the rollout's
calls (CreateDeployment, job executions, ListEffectiveDeployments, ListInstalledComponents, CloudWatch
GetMetricData) and the agents' (iot-jobs-data, iot-data Publish of fleet status and health records, which
the twin's topic rules turn into CloudWatch datapoints). Things and groups are made in moto's backend
directly (setup, not measured).

- plan: `check_and_plan` through boto3 (components checked, groups listed, revisions read) and the pure
  `plan_rollout` on the same inventory; baseline in the same run: listing the parent group's members
  alone (the AWS reads a plan cannot avoid). Target: < 1 s for 10,000 devices in 5 rings.
- fleets: the fleet's first rollout (its ring groups made and filled, then 1.0.1; 2% of deployments fail;
  canary 2% with the full health gate, wave 18% with error rate and results, rest 80% with device states
  only; minSucceeded 0.95). Reported: wall time, the injected time it covered, requests, the rollout's own
  CPU (thread time of the orchestrator: planning, polling, gates) per device, process CPU per device, and
  how each grows from 1,000 to 10,000.
- device twins (EDGEML_BENCH_ROLLOUT_TWINS=12): a baseline then a 3-ring rollout on nucleus device twins
  (real processes, wall clock, 5 s soaks, state gates), wall time by stage from the run's own events.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import yaml
from rich.console import Console
from rich.table import Table

from edgeml.deploy import gate
from edgeml.deploy.aws import Clients, group_members
from edgeml.deploy.clock import WallClock
from edgeml.deploy.errors import GateFailed
from edgeml.deploy.orchestrator import Orchestrator
from edgeml.deploy.plan import check_and_plan, plan_rollout
from edgeml.deploy.spec import RolloutSpec, parse_spec
from edgeml.twin.cloud.endpoint import CloudEndpoint, moto_iot
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.rules.install import install_health_rules
from edgeml.twin.cloud.service import ManualClock
from edgeml.twin.device.nucleus import DeviceFleet
from edgeml.twin.fleet import Boto3DeviceApi, FleetBehaviour, LightFleet
from edgeml.twin.fleet.simtime import FleetTime

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]
PLAN_DEVICES, PLAN_RINGS = 10_000, 5
# The figures are 1,000 and 10,000 agents (EDGEML_BENCH_ROLLOUT_FLEETS=1000,10000, about 7 minutes on
# the shared 2-core VM: every agent request is a real boto3 call); the default keeps `scripts/bench` short.
FLEETS = tuple(int(n) for n in os.environ.get("EDGEML_BENCH_ROLLOUT_FLEETS", "250,1000").split(",") if n)
FAILURE_RATE = 0.02
# Nucleus device twins (real processes) for the stage timings; 0 skips them (the default keeps the run short).
TWINS = int(os.environ.get("EDGEML_BENCH_ROLLOUT_TWINS", "0"))
PLAN_TARGET_S = 1.0


def _provision(prefix: str, count: int) -> tuple[str, list[str]]:
    iot = moto_iot(REGION)
    group = f"{prefix}-fleet"
    group_arn = iot.create_thing_group(group, None, {})[1]
    things = [f"{prefix}-{i:05d}" for i in range(count)]
    for thing in things:
        arn = iot.create_thing(thing, None, {}).arn
        iot.add_thing_to_thing_group(group, group_arn, thing, arn)
    return group, things


def _components(prefix: str) -> tuple[str, str]:
    gg = boto3.client("greengrassv2", region_name=REGION)
    model, app = f"com.bench.{prefix}Model", f"com.bench.{prefix}App"
    for name, version in ((model, "1.0.0"), (model, "1.0.1"), (app, "1.0.0")):
        recipe = {"RecipeFormatVersion": "2020-01-25", "ComponentName": name, "ComponentVersion": version}
        gg.create_component_version(inlineRecipe=yaml.safe_dump(recipe).encode())
    return model, app


def _spec(
    name: str,
    model: str,
    app: str,
    version: str,
    rings: list[dict[str, Any]],
    namespace: str = "EdgeML/Bench",
) -> RolloutSpec:
    document = {
        "name": name,
        "components": {model: {"version": version}, app: {"version": "1.0.0"}},
        "health": {"metricNamespace": namespace},
        "pollSeconds": 60,
        "rings": rings,
    }
    return parse_spec(document, f"{name}.yaml")


def bench_plan(console: Console) -> None:
    group, _ = _provision("plan", PLAN_DEVICES)
    model, app = _components("Plan")
    shares = [0.01, 0.04, 0.15, 0.3, 0.5]
    rings = [{"name": f"r{i}", "parentGroup": group, "share": s} for i, s in enumerate(shares)]
    spec = _spec("plan", model, app, "1.0.1", rings)
    clients = Clients(REGION)
    check_and_plan(clients, spec)  # warm: connections, the account id, the component cache of the twin
    listing_s = _median(lambda: group_members(clients, group))
    full_s = _median(lambda: check_and_plan(clients, spec))
    plan, _ = check_and_plan(clients, spec)
    members = group_members(clients, group)
    inventory = {group: members or []}
    started = time.perf_counter()
    pure = plan_rollout(spec, inventory, {r.name: None for r in spec.rings})
    pure_s = time.perf_counter() - started
    assert sum(len(r.devices) for r in plan.rings) == PLAN_DEVICES == sum(len(r.devices) for r in pure.rings)
    table = Table(
        title=f"plan: {PLAN_DEVICES:,} devices in {PLAN_RINGS} rings (target < {PLAN_TARGET_S:g} s)"
    )
    for column in ("step", "seconds", "ratio to listing the members"):
        table.add_column(column)
    table.add_row("list the parent group's members (baseline)", f"{listing_s:.3f}", "1.00")
    table.add_row("edgeml deploy plan (check_and_plan, boto3)", f"{full_s:.3f}", f"{full_s / listing_s:.2f}")
    table.add_row("plan_rollout on the inventory (no AWS)", f"{pure_s:.3f}", f"{pure_s / listing_s:.2f}")
    console.print(table)
    verdict = "meets" if full_s < PLAN_TARGET_S else "MISSES"
    console.print(
        f"plan of {PLAN_DEVICES:,} devices: {full_s:.3f} s, {verdict} the < {PLAN_TARGET_S:g} s target"
    )


def _median(call: Callable[[], object], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return sorted(times)[rounds // 2]


@dataclass
class FleetFigures:
    devices: int
    wall_s: float
    injected_s: float
    outcome: str
    requests: int
    rollout_cpu_s: float
    process_cpu_s: float
    failed_devices: int


class _Timed:
    """The FleetTime waiter, with the orchestrator's own CPU kept apart from the agents' steps."""

    def __init__(self, inner: FleetTime) -> None:
        self.inner = inner
        self.agents_cpu = 0.0

    def now(self) -> float:
        return self.inner.now()

    def sleep(self, seconds: float) -> None:
        started = time.thread_time()
        self.inner.sleep(seconds)
        self.agents_cpu += time.thread_time() - started


def bench_fleet(endpoint: CloudEndpoint, clock: ManualClock, count: int) -> FleetFigures:
    prefix = f"f{count}"
    group, things = _provision(prefix, count)
    model, app = _components(prefix.upper())
    namespace = f"EdgeML/Bench{prefix}-up"
    install_health_rules(
        boto3.client("iot", region_name=REGION), f"bench_{prefix}", namespace, "arn:aws:iam::1:role/r"
    )
    behaviour = FleetBehaviour(
        watched_component=model,
        apply_seconds=30,
        health_interval_s=300,
        seed=count,
        failure_rate=FAILURE_RATE,
    )
    api = Boto3DeviceApi(endpoint_url=endpoint.endpoint_url, region_name=REGION)
    fleet = LightFleet.of(things, behaviour, api)
    waiter = _Timed(FleetTime(clock, fleet, tick_s=60))
    rate = {"jobExecutionsRolloutConfig": {"maximumPerMinute": 1000}}
    gates: dict[str, dict[str, Any]] = {
        "canary": {
            "minSucceeded": 0.9,  # a canary of ~20 devices: one failed deployment is 5%
            "maxErrorRate": 0.05,
            "maxLatencyP99Ms": 100,
            "minMeanConfidence": 0.6,
            "maxDriftPsi": 0.25,
            "minResultsPerDevice": 1,
        },
        "wave": {"minSucceeded": 0.95, "maxErrorRate": 0.05, "minResultsPerDevice": 1},
        "rest": {"minSucceeded": 0.95},
    }
    rings = [
        {
            "name": name,
            "parentGroup": group,
            "share": share,
            "soakSeconds": 600,
            "gate": gates[name],
            "iotJobConfiguration": rate,
        }
        for name, share in (("canary", 0.02), ("wave", 0.18), ("rest", 0.8))
    ]
    spec = _spec(f"{prefix}-up", model, app, "1.0.1", rings, namespace)
    calls_before, injected_before = api.calls, waiter.inner.slept
    waiter.agents_cpu = 0.0
    process_before, thread_before = time.process_time(), time.thread_time()
    started = time.perf_counter()
    orchestrator = Orchestrator(Clients(REGION), spec, waiter)
    try:
        outcome = orchestrator.run().outcome
    except GateFailed as stopped:
        outcome = f"gate failed: {str(stopped)[:60]}"
    wall = time.perf_counter() - started
    thread_cpu = time.thread_time() - thread_before - waiter.agents_cpu
    failed = sum(1 for a in fleet.agents.values() if a.watched_version() != "1.0.1")
    return FleetFigures(
        count,
        wall,
        waiter.inner.slept - injected_before,
        outcome,
        api.calls - calls_before,
        thread_cpu,
        time.process_time() - process_before,
        failed,
    )


def bench_device_twins(console: Console, endpoint: CloudEndpoint, root: Path, count: int) -> None:
    """A 3-ring rollout on `count` nucleus device twins, wall time by stage from the run's own events."""
    gg = boto3.client("greengrassv2", region_name=REGION)
    name = "com.bench.TwinModel"
    for version in ("1.0.0", "1.0.1"):
        recipe = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": name,
            "ComponentVersion": version,
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "sleep 3600"}}],
        }
        gg.create_component_version(inlineRecipe=yaml.safe_dump(recipe).encode())
    parent = "bench-twins"
    with DeviceFleet(endpoint.endpoint_url, root, count, groups=[parent], prefix="bench-twin", poll_s=0.5):
        rings = [
            {"name": r, "parentGroup": parent, "share": s, "soakSeconds": 5, "gate": {"minSucceeded": 1.0}}
            for r, s in (("canary", 0.25), ("wave", 0.25), ("rest", 0.5))
        ]
        for version, soak in (("1.0.0", 0), ("1.0.1", 5)):
            for entry in rings:
                entry["soakSeconds"] = soak
            document = {
                "name": f"twins-{version}",
                "components": {name: {"version": version}},
                "pollSeconds": 0.5,
                "rings": rings,
            }
            spec = parse_spec(document, "twins.yaml")
            started = time.time()
            record = Orchestrator(Clients(REGION), spec, WallClock()).run()
            total = time.time() - started
    table = Table(
        title=f"{count} nucleus device twins, 3 rings, wall time by stage (s), outcome {record.outcome}"
    )
    for column in ("ring", "devices", "deploy -> settled", "soak", "gate", "ring total"):
        table.add_column(column)
    sizes = {r.name: len(r.devices) for r in record.plan.rings} if record.plan else {}
    marks: dict[str, dict[str, float]] = {}
    for event in record.events:
        what = "created" if "created" in event.what else event.what.split()[0].rstrip(";")
        marks.setdefault(event.ring, {}).setdefault(what, event.at)
    previous = started
    for ring in spec.rings:
        m = marks.get(ring.name, {})
        created, settled, gated = (
            m.get("created", previous),
            m.get("settled", previous),
            m.get("gate", previous),
        )
        soak_end = settled + ring.soak_s
        table.add_row(
            ring.name,
            str(sizes.get(ring.name, 0)),
            f"{settled - created:.1f}",
            f"{ring.soak_s:.1f}",
            f"{gated - soak_end:.1f}",
            f"{gated - previous:.1f}",
        )
        previous = gated
    table.add_row("rollout", str(count), "", "", "", f"{total:.1f}")
    console.print(table)


def main() -> None:
    logging.getLogger("edgeml.twin.cloud.rules").setLevel(logging.ERROR)
    console = Console(width=160)
    clock = ManualClock()
    gate.READERS = 1  # the gate's device reads in this thread: the rollout's CPU is this thread's
    with (
        tempfile.TemporaryDirectory() as folder,
        CloudEndpoint(Path(folder), clock=clock, persist_moto=False) as endpoint,
        mock.patch.dict(os.environ, {**TWIN_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint.endpoint_url}),
    ):
        bench_plan(console)
        figures = [bench_fleet(endpoint, clock, count) for count in FLEETS]
    if TWINS:
        with (
            tempfile.TemporaryDirectory() as folder,
            CloudEndpoint(Path(folder) / "cloud", persist_moto=False) as endpoint,
            mock.patch.dict(os.environ, {**TWIN_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint.endpoint_url}),
        ):
            bench_device_twins(console, endpoint, Path(folder) / "devices", TWINS)
    if not figures:
        return
    table = Table(title=f"light fleets, 3 rings (2% / 18% / 80%), {FAILURE_RATE:.0%} deployment failures")
    for column in (
        "agents",
        "outcome",
        "wall s",
        "injected s",
        "agent requests",
        "rollout CPU ms/device (its thread)",
        "process CPU ms/device",
        "devices not on 1.0.1",
    ):
        table.add_column(column)
    for f in figures:
        table.add_row(
            f"{f.devices:,}",
            f.outcome,
            f"{f.wall_s:.1f}",
            f"{f.injected_s:.0f}",
            f"{f.requests:,}",
            f"{f.rollout_cpu_s / f.devices * 1000:.2f}",
            f"{f.process_cpu_s / f.devices * 1000:.2f}",
            str(f.failed_devices),
        )
    if len(figures) == 2:
        small, large = figures
        table.add_row(
            f"growth {large.devices // small.devices}x",
            "",
            f"{large.wall_s / small.wall_s:.1f}x",
            f"{large.injected_s / max(small.injected_s, 1):.1f}x",
            f"{large.requests / small.requests:.1f}x",
            f"{(large.rollout_cpu_s / large.devices) / (small.rollout_cpu_s / small.devices):.2f}x",
            f"{(large.process_cpu_s / large.devices) / (small.process_cpu_s / small.devices):.2f}x",
            "",
        )
    console.print(table)


if __name__ == "__main__":
    main()
