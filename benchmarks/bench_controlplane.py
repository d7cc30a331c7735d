"""Cloud twin control plane: per-request latency of our protocol layer against moto's in the same run,
and how deployment and listing cost grows with the fleet.

Everything goes through plain boto3 on loopback to one in-process endpoint (the server on its own threads,
the client in this thread: the GIL is shared alike by both halves, as in the tests).

- in-process: the same GetDeployment handled by the protocol layer directly (no HTTP, no boto3).
- latency: `iot.describe_job` for a deployment's job (served by our protocol layer + control plane) and for
  a job moto owns (moto's own IoT), and `greengrassv2.get_deployment` (ours) against `iot.describe_thing`
  (moto); p50/p99 in ms and the ratio ours/moto (target: within 2x).
- fleet: a thing group of 1,000 and 10,000 things (made in moto's backend directly: setup, not measured);
  create_deployment, then until describe_job shows an execution for every thing (job expansion), the
  median of three rounds (each a new revision that supersedes the last);
  list_core_devices paged to the end (100 a page) over the same number of reporting core devices; and
  list_effective_deployments for 200 of those devices. Growth = 10,000 figure / 1,000 figure.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from edgeml.twin.cloud.endpoint import CloudEndpoint, moto_iot
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.protocol import Request, RestJsonService

REQUESTS = 400
WARMUP = 40
FLEETS = (1_000, 10_000)
SAMPLED_DEVICES = 200
DEPLOY_ROUNDS = 3  # create_deployment + expansion per fleet size; the median is reported
TARGET_RATIO = 2.0
REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]
ACCOUNT = "123456789012"


def _client(endpoint: CloudEndpoint, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint.endpoint_url,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"total_max_attempts": 1}),
    )


def _latencies(call: Callable[[], Any]) -> np.ndarray:
    for _ in range(WARMUP):
        call()
    times = np.empty(REQUESTS)
    for index in range(REQUESTS):
        start = time.perf_counter()
        call()
        times[index] = time.perf_counter() - start
    return times * 1000.0


def _fleet(endpoint: CloudEndpoint, size: int) -> tuple[str, list[str]]:
    """A thing group of `size` things in moto, each also a reporting core device (a health message)."""
    iot = moto_iot(REGION)
    group = f"bench-fleet-{size}"
    group_arn = iot.create_thing_group(group, None, {})[1]
    things = [f"bench-{size}-{index:05d}" for index in range(size)]
    assert endpoint.control_plane is not None
    for thing in things:
        thing_arn = iot.create_thing(thing, None, {}).arn
        iot.add_thing_to_thing_group(group, group_arn, thing, thing_arn)
        health = {
            "thing": thing,
            "ggcVersion": "2.14.0",
            "platform": "linux",
            "architecture": "amd64",
            "runtime": "aws_nucleus_classic",
            "overallDeviceStatus": "HEALTHY",
            "timestamp": int(time.time() * 1000),
            "messageType": "COMPLETE",
            "components": [],
        }
        endpoint.control_plane.on_iot_publish(
            f"$aws/things/{thing}/greengrassv2/health/json", json.dumps(health).encode(), REGION
        )
    return group_arn, things


def _component(endpoint: CloudEndpoint) -> str:
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "com.edgeml.Bench",
        "ComponentVersion": "1.0.0",
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "true"}}],
    }
    greengrass = _client(endpoint, "greengrassv2")
    arn = str(greengrass.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"])
    deadline = time.monotonic() + 10
    while greengrass.describe_component(arn=arn)["status"]["componentState"] != "DEPLOYABLE":
        if time.monotonic() > deadline:
            raise RuntimeError("the bench component never became DEPLOYABLE")
        time.sleep(0.01)
    return arn


def _expand(endpoint: CloudEndpoint, group_arn: str, size: int) -> tuple[float, float, str]:
    greengrass, iot = _client(endpoint, "greengrassv2"), _client(endpoint, "iot")
    start = time.perf_counter()
    deployment = greengrass.create_deployment(
        targetArn=group_arn, components={"com.edgeml.Bench": {"componentVersion": "1.0.0"}}
    )
    created = time.perf_counter() - start
    while True:
        details = iot.describe_job(jobId=deployment["iotJobId"])["job"].get("jobProcessDetails", {})
        executions = sum(value for key, value in details.items() if key.startswith("numberOf"))
        if executions >= size:
            break
        if time.perf_counter() - start > 60:
            raise RuntimeError(f"job expansion to {size} things did not finish in 60 s ({executions})")
        time.sleep(0.005)
    return created, time.perf_counter() - start, str(deployment["iotJobId"])


def _list_core_devices(endpoint: CloudEndpoint) -> tuple[float, int]:
    greengrass = _client(endpoint, "greengrassv2")
    start = time.perf_counter()
    devices = 0
    for page in greengrass.get_paginator("list_core_devices").paginate(PaginationConfig={"PageSize": 100}):
        devices += len(page.get("coreDevices", []))
    return time.perf_counter() - start, devices


def _effective(endpoint: CloudEndpoint, things: list[str]) -> np.ndarray:
    greengrass = _client(endpoint, "greengrassv2")
    picks = things[:: max(1, len(things) // SAMPLED_DEVICES)][:SAMPLED_DEVICES]
    times = np.empty(len(picks))
    for index, thing in enumerate(picks):
        start = time.perf_counter()
        greengrass.list_effective_deployments(coreDeviceThingName=thing)
        times[index] = time.perf_counter() - start
    return times * 1000.0


def _in_process_get_deployment(endpoint: CloudEndpoint, deployment_id: str) -> Callable[[], Any]:
    """One GetDeployment request handled by a RestJsonService directly: the layer's own share of a call."""
    assert endpoint.control_plane is not None
    service = RestJsonService("greengrassv2", endpoint.control_plane.greengrassv2)
    request = Request("GET", f"/greengrass/v2/deployments/{deployment_id}", {}, {}, b"")

    def call() -> Any:
        response = service.handle(request)
        assert response.status == 200, response.body
        return response

    return call


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as state, CloudEndpoint(Path(state), persist_moto=False) as endpoint:
        if endpoint.control_plane is None or not hasattr(endpoint.control_plane, "tick"):
            console.print("controlplane: the control plane is not importable; nothing to measure")
            return
        iot, greengrass = _client(endpoint, "iot"), _client(endpoint, "greengrassv2")
        _component(endpoint)
        group_arn, _ = _fleet(endpoint, 10)
        created, _, our_job = _expand(endpoint, group_arn, 10)
        deployment_id = greengrass.list_deployments(targetArn=group_arn)["deployments"][0]["deploymentId"]
        iot.create_thing(thingName="bench-moto-thing")
        iot.create_job(
            jobId="bench-moto-job",
            targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/bench-moto-thing"],
            document="{}",
        )
        pairs = [
            (
                "iot describe_job",
                lambda: iot.describe_job(jobId=our_job),
                lambda: iot.describe_job(jobId="bench-moto-job"),
            ),
            (
                "get_deployment vs describe_thing",
                lambda: greengrass.get_deployment(deploymentId=deployment_id),
                lambda: iot.describe_thing(thingName="bench-moto-thing"),
            ),
        ]
        latency = Table(title=f"cloud twin per-request latency, boto3 on loopback ({REQUESTS} requests, ms)")
        for column in (
            "call",
            "ours p50",
            "ours p99",
            "moto p50",
            "moto p99",
            "p50 ratio",
            "p99 ratio",
            "≤2x",
        ):
            latency.add_column(column, justify="right" if column != "call" else "left")
        for label, ours_call, moto_call in pairs:
            ours, theirs = [], []
            for _ in range(2):  # interleaved halves, so drift hits both alike
                ours.append(_latencies(ours_call))
                theirs.append(_latencies(moto_call))
            ours_ms, moto_ms = np.concatenate(ours), np.concatenate(theirs)
            p50 = np.percentile(ours_ms, 50) / np.percentile(moto_ms, 50)
            p99 = np.percentile(ours_ms, 99) / np.percentile(moto_ms, 99)
            latency.add_row(
                label,
                f"{np.percentile(ours_ms, 50):.2f}",
                f"{np.percentile(ours_ms, 99):.2f}",
                f"{np.percentile(moto_ms, 50):.2f}",
                f"{np.percentile(moto_ms, 99):.2f}",
                f"{p50:.2f}",
                f"{p99:.2f}",
                "yes" if max(p50, p99) <= TARGET_RATIO else "no",
            )
        console.print(latency)
        in_process = _latencies(_in_process_get_deployment(endpoint, deployment_id))
        console.print(
            f"get_deployment in-process (protocol layer + control plane, no HTTP, no boto3): "
            f"p50 {np.percentile(in_process, 50):.3f} ms, p99 {np.percentile(in_process, 99):.3f} ms",
            highlight=False,
        )

        fleet = Table(title="cloud twin cost by fleet size (boto3 on loopback)")
        for column in (
            "things",
            "create_deployment ms",
            "expansion s",
            "list_core_devices s (all pages)",
            "devices listed",
            "effective p50 ms",
            "effective p99 ms",
        ):
            fleet.add_column(column, justify="right")
        rows: dict[int, tuple[float, float, float, float]] = {}
        for size in FLEETS:
            group_arn, things = _fleet(endpoint, size)
            rounds = [_expand(endpoint, group_arn, size)[:2] for _ in range(DEPLOY_ROUNDS)]  # each supersedes
            created = float(np.median([r[0] for r in rounds]))
            expanded = float(np.median([r[1] for r in rounds]))
            listed_s, listed = _list_core_devices(endpoint)
            effective = _effective(endpoint, things)
            rows[size] = (created, expanded, listed_s, float(np.percentile(effective, 50)))
            fleet.add_row(
                f"{size:,}",
                f"{created * 1000:.1f}",
                f"{expanded:.2f}",
                f"{listed_s:.2f}",
                f"{listed:,}",
                f"{np.percentile(effective, 50):.2f}",
                f"{np.percentile(effective, 99):.2f}",
            )
        small, large = rows[FLEETS[0]], rows[FLEETS[1]]
        growth = [large[index] / small[index] if small[index] else float("nan") for index in range(4)]
        fleet.add_row(
            "growth 10k/1k",
            f"{growth[0]:.1f}x",
            f"{growth[1]:.1f}x",
            f"{growth[2]:.1f}x",
            "",
            f"{growth[3]:.1f}x",
            "",
        )
        console.print(fleet)
        console.print(
            "list_core_devices lists every reporting device in the twin (1,000 fleet + 10 + the 10,000 "
            "fleet on the second row); fleet size grows 10x between rows.",
            highlight=False,
        )


if __name__ == "__main__":
    main()
