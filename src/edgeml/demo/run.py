"""The demo's steps, in the order of the data flow:

1. cloud twin: the one loopback endpoint (moto in-process + the GreengrassV2 control plane); every boto3
   client is pointed at it by AWS_ENDPOINT_URL
2. model: local compile of the digits model (FP32, optimised, FP16, INT8), each measured on the holdout;
   packaged as com.edgeml.model.Digits 1.0.0 (an artifact zip per platform, metadata.json, sha256)
3. build and publish: `edgeml build` of Runtime, Model and Inference (a copy of components/ under the work
   folder), then `edgeml publish` of each through the twin (S3 upload, CreateComponentVersion, DEPLOYABLE)
4. devices: nucleus twins provisioned into two thing groups (the rings: canary, fleet); CreateDeployment
   of the three components to each group; each device resolves, downloads, verifies, unarchives and runs
   them from their recipes (the Runtime's real Install step builds its venv offline from a wheelhouse;
   Stream Manager as the public aws.greengrass.StreamManager component); waited until every device
   SUCCEEDED and the app is RUNNING
5. inference: a third of the held-out digit images (and one corrupt file) dropped in the apps' input folders
6. model update: 1.0.1 (the FP32 variant) packaged, built and published, then rolled out with `edgeml
   deploy`'s code: the canary ring first, soaked and gated, then the fleet ring; the next third is
   answered by it
7. offline: the cloud twin stops; the last third is answered and buffered in the Stream Manager streams
   and the IPC spooler; the cloud comes back on the same port and both catch up
8. what came back: the results streams, Kinesis (exported by Stream Manager), IoT Core, captured inputs in
   S3, health streams, the cloud's view of each core device; then the devices stop their components
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console

from edgeml.demo.cloud import (
    MODEL_COMPONENT,
    CloudResources,
    build_components,
    compile_digits,
    copy_component_sources,
    create_resources,
    package_digits,
    publish_components,
)
from edgeml.demo.cloudtwin import DemoCloud
from edgeml.demo.devicepython import find_device_python
from edgeml.demo.digits import write_holdout_images
from edgeml.demo.fleet import DemoDevice, DemoFleet, cloud_view
from edgeml.demo.report import DemoSummary, ResultFigures, render
from edgeml.demo.rollout import RingGroup, health_datapoints, run_rollout
from edgeml.demo.workdir import check_work_folder, prepare_work_folder
from edgeml.deploy.spec import DEFAULT_NAMESPACE
from edgeml.errors import EdgemlError
from edgeml.model.package import PackagedComponent
from edgeml.twin.cloud.motoserver import pointed_at
from edgeml.twin.cloud.readback import kinesis_payloads, s3_object_count
from edgeml.twin.device.nucleus.stack import edgeml_deployment
from edgeml.twin.loopback import wait_for

RUNTIME = "com.edgeml.Runtime"
THING_PREFIX = "edgeml-demo-core"
# The rings of the model update's rollout, each an existing thing group; every device is in one of them.
RINGS = (
    RingGroup("canary", "edgeml-demo-canary", gated=True),
    RingGroup("fleet", "edgeml-demo-fleet", gated=False),
)
DEVICES_PER_RING = {"canary": 1, "fleet": 1}
ROLLOUT = "edgeml-demo-model-1-0-1"
HOLDOUT_IMAGES = 360
CORRUPT_FILE = "corrupt.png"


def split_in_thirds(images: int) -> tuple[int, int, int]:
    first = images // 3
    second = (images - first) // 2
    return first, second, images - first - second


def share(count: int, parts: int) -> list[int]:
    """`count` split into `parts` shares that differ by at most one, larger first."""
    return [count // parts + (1 if index < count % parts else 0) for index in range(parts)]


def result_ids(payload: bytes) -> list[str]:
    """The request ids of the results in one IoT Core message: the app batches them ({"kind": "results",
    "count": n, "results": [...]}), or sends one result as it is; health records and events carry none."""
    message = json.loads(payload)
    if not isinstance(message, dict):
        return []
    if message.get("kind") == "results":
        return [str(result["request_id"]) for result in message["results"]]
    return [str(message["request_id"])] if "request_id" in message else []


def distinct_results(entries: Iterable[Any]) -> int:
    """Results carried by IoT Core messages, each counted once (a spooled batch re-sent is one batch)."""
    return len({rid for entry in entries for rid in result_ids(entry.payload)})


class Demo:
    """One run of the demo; each step method is one stage of the data flow."""

    def __init__(self, repo: Path, work: Path, images: int, console: Console) -> None:
        self.repo = repo
        self.work = work
        self.images = images
        self.console = console
        self.summary = DemoSummary(images=images)
        self.cloud = DemoCloud(work / "cloud")
        self.components_dir = work / "src" / "components"
        self.fleet: DemoFleet | None = None
        self.sent = 0  # images dropped so far, over all devices
        self.corrupt_sent = 0
        self._stage: tuple[str, float] | None = None
        self.wheelhouse = Path()  # the devices' offline wheelhouse, found when they start

    def stage(self, name: str, title: str) -> None:
        """Prints a stage's rule and starts its clock (each stage runs until the next one starts)."""
        now = time.monotonic()
        self._close_stage(now)
        self._stage = (name, now)
        self.console.rule(title)

    def _close_stage(self, now: float) -> None:
        if self._stage is not None:
            name, started = self._stage
            self.summary.seconds[name] = round(self.summary.seconds.get(name, 0.0) + now - started, 1)
            self._stage = None

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    @property
    def devices(self) -> list[DemoDevice]:
        return self.fleet.devices if self.fleet is not None else []

    # -- cloud, model, build, publish ---------------------------------------------------------------

    def create_cloud_resources(self) -> CloudResources:
        self.stage("cloud twin", f"cloud twin: {self.cloud.endpoint_url} (moto + GreengrassV2 control plane)")
        return create_resources()

    def compile_and_package(self, bucket: str) -> PackagedComponent:
        self.stage("model compile + package", "model: compile locally, package as a component version")
        variants_dir = self.work / "variants"
        variant_set = compile_digits(self.repo / "models" / "digits" / "model.onnx", variants_dir)
        self.summary.variants = [
            {
                "target": variant.target,
                "quantisation": variant.quantisation,
                "accuracy_top1": variant.accuracy_top1,
                "bytes": (variants_dir / variant.path).stat().st_size,
            }
            for variant in variant_set.variants
        ]
        return package_digits(variants_dir, self.work / "model", bucket, "1.0.0")

    def build_and_publish(self, model: PackagedComponent, bucket: str) -> None:
        self.stage(
            "build + publish",
            "build: Runtime, Model and Inference (gdk layout); publish through the cloud twin",
        )
        copy_component_sources(self.repo, self.work / "src")
        build_components(self.components_dir, self.work / "model", model.version)
        self.publish(bucket)

    def publish(self, bucket: str, names: list[str] | None = None) -> None:
        for result in publish_components(self.components_dir, bucket, names):
            self.say(f"published {result.component} {result.version} ({result.arn}): {result.state}")
            self.summary.published[result.component] = result.version

    # -- devices and deployments --------------------------------------------------------------------

    def start_devices(self) -> None:
        python, downloaded = find_device_python(self.components_dir / RUNTIME / "requirements")
        groups = {ring.thing_group: DEVICES_PER_RING[ring.name] for ring in RINGS}
        self.stage(
            "device twins start",
            "devices: nucleus twins in thing groups " + ", ".join(f"{g} ({n})" for g, n in groups.items()),
        )
        fetched = " (downloaded into the cache now)" if downloaded else ""
        self.say(f"device OS python3: {python.interpreter} ({python.version}); Runtime wheelhouse"
                 f" {python.wheelhouse}{fetched}")
        self.fleet = DemoFleet(
            self.work / "devices", self.cloud.endpoint_url, groups, python.system_path, THING_PREFIX
        )
        self.fleet.start()
        self.wheelhouse = python.wheelhouse

    def deployment_components(self, resources: CloudResources, model_version: str) -> dict[str, Any]:
        """What a deployer writes in CreateDeployment (the nucleus twin's `edgeml_deployment`): versions, the
        offline wheelhouse, the cloud resources, and the demo's capture, health and port settings."""
        app = {
            "CaptureBucket": resources.capture_bucket,
            "ConfidenceThreshold": 0.9,  # capture every input the model is less than 90% sure of
            "CaptureSampleRate": 1.0,
            "HealthIntervalS": 1,
            "HttpPort": 0,  # the devices share this machine's loopback: no fixed port for all of them
        }
        versions = {**self.summary.published, MODEL_COMPONENT: model_version}
        return edgeml_deployment(versions, self.wheelhouse, resources.results_kinesis_stream, app)

    def deploy(self, name: str, components: dict[str, Any]) -> None:
        assert self.fleet is not None
        statuses = self.fleet.deploy(name, components)
        self.fleet.wait_running()
        self.say(f"deployment {name}: " + ", ".join(f"{t} {s}" for t, s in statuses.items()))
        self.summary.deployments.append({"name": name, "devices": statuses})

    def first_deployment(self, resources: CloudResources, model: PackagedComponent) -> None:
        self.stage(
            "first deployment (Runtime Install included)",
            "deploy: CreateDeployment to each thing group, each device to RUNNING",
        )
        self.deploy("edgeml-demo", self.deployment_components(resources, model.version))
        self.summary.app_starts_before_update = {d.thing_name: d.app_starts() for d in self.devices}

    # -- inference ----------------------------------------------------------------------------------

    def all_results(self) -> dict[str, list[dict[str, Any]]]:
        stream = self.result_stream
        return {device.thing_name: device.read_stream(stream, timeout_ms=0) for device in self.devices}

    @property
    def result_stream(self) -> str:
        return str(self.devices[0].app_configuration["ResultStream"])

    def infer(self, count: int, label: str, corrupt: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Drops the next `count` held-out images, shared over the devices (and a corrupt file on the
        first), and waits until every one is answered in the results streams."""
        self.stage(f"inference {label}", f"inference: {count} images {label}")
        for device, part in zip(self.devices, share(count, len(self.devices)), strict=True):
            write_holdout_images(device.inputs, part, offset=self.sent)
            self.sent += part
        if corrupt:
            (self.devices[0].inputs / CORRUPT_FILE).write_bytes(b"\x89PNG\r\n\x1a\n not an image")
            self.corrupt_sent += 1
        expected = self.sent + self.corrupt_sent

        def answered() -> dict[str, list[dict[str, Any]]] | None:
            found = self.all_results()
            return found if sum(len(results) for results in found.values()) >= expected else None

        return wait_for(answered, f"{expected} results in the devices' {self.result_stream} streams", 90)

    def update_model(self, resources: CloudResources, previous: PackagedComponent) -> None:
        self.stage(
            "model update: publish + staged rollout",
            "model update: 1.0.1 (FP32 variant) published, then rolled out ring by ring",
        )
        slot = f"linux-{self.devices[0].twin.platform['architecture']}"
        bucket = resources.artifact_bucket
        variants, packages = self.work / "variants", self.work / "model"
        update = package_digits(variants, packages, bucket, "1.0.1", {slot: "cpu-fp32"})
        build_components(self.components_dir, self.work / "model", update.version, [MODEL_COMPONENT])
        self.publish(resources.artifact_bucket, [MODEL_COMPONENT])
        assert self.fleet is not None
        outcome = run_rollout(self.work, ROLLOUT, {MODEL_COMPONENT: update.version}, list(RINGS), self.say)
        json_report, html_report = outcome.reports
        self.say(f"rollout {ROLLOUT}: {outcome.outcome}; reports {json_report} and {html_report}")
        self.summary.rollout = {
            "name": ROLLOUT,
            "outcome": outcome.outcome,
            "failure": outcome.failure,
            "rings": outcome.rings,
            "CloudWatch health metrics of the devices": health_datapoints(
                DEFAULT_NAMESPACE, self.fleet.things()
            ),
        }
        self.fleet.wait_running()
        restarts = {
            d.thing_name: d.app_starts() - self.summary.app_starts_before_update[d.thing_name]
            for d in self.devices
        }
        self.summary.model_update = {
            "from": previous.version,
            "to": update.version,
            "app restarts by the nucleus": restarts,
        }
        how = "restarted by the nucleus" if any(restarts.values()) else "without a restart"
        self.say(f"model {previous.version} -> {update.version}: the app was {how} ({restarts})")

    def infer_offline(self, count: int, resources: CloudResources) -> dict[str, list[dict[str, Any]]]:
        """Stops the cloud twin, answers `count` images into the streams, brings the cloud back."""
        self.cloud.stop()
        results = self.infer(count, "while the cloud twin is down")
        failing = wait_for(
            lambda: [e for d in self.devices for e in d.export_errors(self.result_stream)],
            "the Kinesis export to report the outage",
        )
        self.say(f"export while offline: {failing[0]}")
        total = sum(len(r) for r in results.values())
        # the app sends each result to IoT Core within IoTCoreBatchMs; while the cloud is down those
        # QoS 1 publishes wait in the device's spooler
        self.wait_iot_core(total)
        spooled = sum(1 for d in self.devices for entry in d.mqtt_log if not entry.forwarded)
        self.cloud.start()  # the same port; moto keeps its state in-process, the control plane reloads
        self.stage(
            "cloud back: streams catch up",
            f"cloud twin back on {self.cloud.endpoint_url}: the streams catch up",
        )
        wait_for(
            lambda: len(kinesis_payloads(resources.results_kinesis_stream)) >= total,
            "Stream Manager's export of every result to Kinesis after the outage",
            timeout_s=60,
        )
        self.summary.offline = {
            "results answered while the cloud was down": count,
            "export errors reported while down": len(failing),
            "IoT Core publishes spooled while down": spooled,
        }
        return results

    def iot_core_results(self) -> int:
        return distinct_results(entry for device in self.devices for entry in device.mqtt_log)

    def wait_iot_core(self, results: int) -> None:
        """Until the devices' IoT Core publishes carry `results` results (the app batches them)."""
        wait_for(lambda: self.iot_core_results() >= results, f"{results} results published to IoT Core", 30)

    # -- what came back -----------------------------------------------------------------------------

    def collect(self, resources: CloudResources, results: dict[str, list[dict[str, Any]]]) -> None:
        """`results`: each device's results stream, read after the last images were answered."""
        self.stage("read-back", "what came back")
        every = [result for thing in sorted(results) for result in results[thing]]
        self.summary.results = ResultFigures.from_results(every)
        payloads = kinesis_payloads(resources.results_kinesis_stream)
        exported = [json.loads(payload)["request_id"] for payload in payloads]
        in_order = all(
            [rid for rid in dict.fromkeys(exported) if rid in ids] == ids
            for ids in ([r["request_id"] for r in device_results] for device_results in results.values())
        )
        self.wait_iot_core(len(every))
        for device in self.devices:
            device.wait_iot_core_forwarded()
        low_confidence = sum(1 for r in every if r.get("status") == "ok" and not r.get("confident", True))
        prefixes = [f"captures/{device.thing_name}/" for device in self.devices]

        def captured() -> int:
            return sum(s3_object_count(resources.capture_bucket, prefix) for prefix in prefixes)

        wait_for(lambda: captured() >= low_confidence or None, "captured inputs exported to S3")
        mqtt = [entry for device in self.devices for entry in device.mqtt_log]
        health = str(self.devices[0].app_configuration["HealthStream"])
        self.summary.exports = {
            "records exported to Kinesis": len(exported),
            "Kinesis records in each device's stream order, none missing": in_order
            and len(set(exported)) == len(every),
            "IoT Core publishes of results (QoS 1, batched)": sum(1 for e in mqtt if result_ids(e.payload)),
            "results in them": distinct_results(mqtt),
            "results in those forwarded to the cloud twin": distinct_results(e for e in mqtt if e.forwarded),
            "health records published to IoT Core": sum(
                1
                for e in mqtt
                if e.topic.endswith("/inference/health") and json.loads(e.payload)["kind"] == "health"
            ),
            "low-confidence inputs captured to S3": captured(),
            "health reports in the health streams": sum(
                len(device.read_stream(health, timeout_ms=0)) for device in self.devices
            ),
            "files moved to done/": sum(len(list((d.inputs / "done").glob("*.png"))) for d in self.devices),
            "files moved to failed/ (with a .json reason)": sum(
                len(list((d.inputs / "failed").glob("*.png"))) for d in self.devices
            ),
        }
        self.summary.per_device = {
            thing: {"results": len(device_results)} for thing, device_results in results.items()
        }
        self.summary.devices = {thing: cloud_view(thing) for thing in self.fleet_things}
        self.summary.components = {
            name: version
            for view in self.summary.devices.values()
            for name, version in view["root components"].items()
        }

    @property
    def fleet_things(self) -> list[str]:
        return [device.thing_name for device in self.devices]

    def stop_devices(self) -> None:
        """The nucleus stops each component (SIGTERM to its process group, as Exec.close() does)."""
        if self.fleet is None:
            return
        self.stage("devices stop", "devices: the nucleus twins stop their components")
        self.fleet.stop()
        self._close_stage(time.monotonic())
        self.summary.apps_stopped_on_sigterm = {d.thing_name: d.stopped_on_sigterm() for d in self.devices}
        self.summary.app_exit_code = 0 if all(self.summary.apps_stopped_on_sigterm.values()) else 1

    def run(self) -> DemoSummary:
        self.cloud.start()
        try:
            with pointed_at(self.cloud.env()):  # a restarted cloud twin keeps the port, so the same env
                self.run_steps()
        finally:
            try:
                self.stop_devices()
            finally:
                self.cloud.stop()
        return self.summary

    def run_steps(self) -> None:
        resources = self.create_cloud_resources()
        first_model = self.compile_and_package(resources.artifact_bucket)
        self.build_and_publish(first_model, resources.artifact_bucket)
        self.start_devices()
        self.first_deployment(resources, first_model)
        before, after, offline = split_in_thirds(self.images)
        self.infer(before, f"on model {first_model.version}", corrupt=True)
        self.update_model(resources, first_model)
        self.infer(after, "on model 1.0.1")
        results = self.infer_offline(offline, resources)
        self.collect(resources, results)


class BadImageCount(EdgemlError):
    """--images is outside the held-out set."""


def check_images(images: int) -> int:
    if not 3 <= images <= HOLDOUT_IMAGES:
        raise BadImageCount(
            f"--images must be between 3 and {HOLDOUT_IMAGES} (the digits holdout), not {images}"
        )
    return images


def run_demo(repo: Path, work: Path, images: int, console: Console) -> DemoSummary:
    """Runs every step with `work` as scratch space; returns what was measured.

    `work` is checked first (check_work_folder: only a folder the demo created, or an empty one, is
    emptied), then created or emptied and marked as the demo's.
    """
    check_images(images)
    work = check_work_folder(work, repo)
    prepare_work_folder(work)
    summary = Demo(repo, work, images, console).run()
    render(summary, console)
    return summary
