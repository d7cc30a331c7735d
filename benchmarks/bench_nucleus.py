"""Nucleus twin: a fleet of device twins taking the three edgeml components, and what a device twin costs.

All through the real parts: the cloud twin in this process (plain boto3 on loopback), device twins polling
iot-jobs-data, the Runtime component's real Install step (a venv per device from the shared wheel cache),
the inference app and Stream Manager as each device's processes.

- idle memory: RSS of this process before/after starting the devices with nothing deployed, per device;
- app memory: per device, its share of this process plus the RSS of its component processes (Stream
  Manager, the inference app) once the app is RUNNING;
- fleet time: CreateDeployment to every device SUCCEEDED with the app RUNNING (target < 60 s on this
  2-core machine, Runtime Install included), beside the baseline measured in the same run: the same fleet
  taking a one-line Run component (the nucleus twin's own cost: job, resolve, download, start);
- stages (median over devices): resolve, download, then install (until the Runtime's Install finished)
  and start (until the app is RUNNING).

EDGEML_BENCH_DEVICES sets the fleet size (default 20).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.table import Table

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.device.nucleus import NucleusTwin
from edgeml.twin.device.nucleus.fleet import provision
from edgeml.twin.device.nucleus.stack import (
    INFERENCE,
    RUNTIME,
    edgeml_deployment,
    publish_edgeml_stack,
    wheelhouse,
)
from edgeml.twin.loopback import free_port

DEVICES = int(os.environ.get("EDGEML_BENCH_DEVICES", "20"))
TARGET_S = 60.0
PYTHON_BIN = Path.home() / ".pyenv" / "versions" / "3.12.1" / "bin"


def _client(endpoint: CloudEndpoint, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=TWIN_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=TWIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _rss_kib(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _children_rss_kib(twin: NucleusTwin) -> int:
    total = 0
    for service in twin.kernel.services.values():
        process = getattr(service, "_process", None)
        if process is not None:
            total += _rss_kib(process.process.pid)
            for child in Path(f"/proc/{process.process.pid}/task").glob("*/children"):
                total += sum(_rss_kib(pid) for pid in child.read_text().split())
    sm = twin.stream_manager.process
    if sm is not None:
        total += _rss_kib(sm.process.pid)
    return total


def _deploy_and_wait(
    endpoint: CloudEndpoint,
    group_arn: str,
    components: dict[str, Any],
    twins: list[NucleusTwin],
    app: str | None,
) -> tuple[float, dict[str, list[float]]]:
    greengrass = _client(endpoint, "greengrassv2")
    started = time.monotonic()
    deployment = greengrass.create_deployment(
        targetArn=group_arn, deploymentName="bench", components=components
    )["deploymentId"]
    installed: dict[str, float] = {}
    running: dict[str, float] = {}
    while len(running) < len(twins):
        now = time.monotonic() - started
        for twin in twins:
            states = twin.states()
            if RUNTIME in states and states[RUNTIME] == "FINISHED":
                installed.setdefault(twin.thing_name, now)
            done = any(d == deployment for d, _ in twin.outcomes)
            if done and (app is None or states.get(app) == "RUNNING"):
                running.setdefault(twin.thing_name, now)
        if now > 900:
            raise TimeoutError(f"only {len(running)} of {len(twins)} devices finished in 900 s")
        time.sleep(0.1)
    failed = [
        (t.thing_name, o.message)
        for t in twins
        for d, o in t.outcomes
        if d == deployment and o.job_status != "SUCCEEDED"
    ]
    if failed:
        raise RuntimeError(f"deployment failed on {failed[:3]}")
    stages: dict[str, list[float]] = {"resolve": [], "download": [], "install": [], "start": []}
    for twin in twins:
        times = twin.task.last_stage_times
        stages["resolve"].append(times.get("resolve", 0.0))
        stages["download"].append(times.get("download", 0.0))
        if app is not None:
            merged = times.get("resolve", 0.0) + times.get("download", 0.0)
            stages["install"].append(installed.get(twin.thing_name, merged) - merged)
            stages["start"].append(running[twin.thing_name] - installed.get(twin.thing_name, merged))
    return max(running.values()), stages


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    console = Console(width=150)
    cache = wheelhouse("3.12")
    if not cache.is_dir() or not (PYTHON_BIN / "python3").exists():
        console.print(
            f"nucleus: needs the shared wheel cache {cache} and Python 3.12 at {PYTHON_BIN}; skipped"
        )
        return
    with (
        tempfile.TemporaryDirectory() as scratch,
        CloudEndpoint(Path(scratch) / "cloud", persist_moto=False) as endpoint,
    ):
        work = Path(scratch)
        versions = publish_edgeml_stack(endpoint.endpoint_url, work / "stack", "bench-nucleus-artifacts")
        _client(endpoint, "kinesis").create_stream(StreamName="bench-results", ShardCount=1)
        greengrass = _client(endpoint, "greengrassv2")
        trivial = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.example.Trivial",
            "ComponentVersion": "1.0.0",
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "exec sleep 3600"}}],
        }
        greengrass.create_component_version(inlineRecipe=json.dumps(trivial).encode())
        iot = _client(endpoint, "iot")
        rss_before = _rss_kib()
        twins = []
        for group in ("bench-baseline", "bench-fleet"):
            iot.create_thing_group(thingGroupName=group)
        for index in range(DEVICES):
            thing = f"bench-core-{index}"
            provision(endpoint.endpoint_url, thing, [])
            twins.append(
                NucleusTwin(
                    work / thing,
                    thing,
                    endpoint.endpoint_url,
                    poll_s=0.5,
                    port_map={8088: free_port()},
                    system_path=f"{PYTHON_BIN}:/usr/bin:/bin",
                )
            )
        for twin in twins:
            twin.start()
        time.sleep(2)
        idle_kib = (_rss_kib() - rss_before) / DEVICES
        try:
            for twin in twins:
                iot.add_thing_to_thing_group(thingGroupName="bench-baseline", thingName=twin.thing_name)
            baseline_arn = iot.describe_thing_group(thingGroupName="bench-baseline")["thingGroupArn"]
            baseline_s, baseline_stages = _deploy_and_wait(
                endpoint,
                baseline_arn,
                {"com.example.Trivial": {"componentVersion": "1.0.0"}},
                twins,
                "com.example.Trivial",
            )
            for twin in twins:
                iot.add_thing_to_thing_group(thingGroupName="bench-fleet", thingName=twin.thing_name)
            fleet_arn = iot.describe_thing_group(thingGroupName="bench-fleet")["thingGroupArn"]
            rss_idle = _rss_kib()
            fleet_s, stages = _deploy_and_wait(
                endpoint,
                fleet_arn,
                edgeml_deployment(versions, cache, "bench-results", {"HttpPort": 0}),
                twins,
                INFERENCE,
            )
            time.sleep(2)
            app_kib = (_rss_kib() - rss_idle) / DEVICES + statistics.mean(_children_rss_kib(t) for t in twins)
        finally:
            for twin in twins:
                twin.stop()
        table = Table(title=f"nucleus twin: {DEVICES} device twins on {os.cpu_count()} cores")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_column("baseline (same run)", justify="right")
        table.add_column("ratio", justify="right")
        table.add_row(
            "3 components to RUNNING (s)",
            f"{fleet_s:.1f}",
            f"{baseline_s:.1f} (one Run component)",
            f"{fleet_s / baseline_s:.1f}x",
        )
        table.add_row("target < 60 s", "met" if fleet_s < TARGET_S else "NOT met", "", "")
        table.add_row("memory per idle device (MiB)", f"{idle_kib / 1024:.1f}", "", "")
        table.add_row("memory per device with the app (MiB)", f"{app_kib / 1024:.1f}", "", "")
        for stage, values in stages.items():
            base = baseline_stages.get(stage) or []
            base_text = f"{statistics.median(base):.2f}" if base else ""
            table.add_row(f"stage {stage}: median (s)", f"{statistics.median(values):.2f}", base_text, "")
        console.print(table)


if __name__ == "__main__":
    main()
