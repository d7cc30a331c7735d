"""The demo's steps, in the order of the data flow:

1. cloud twin: the one loopback endpoint (moto in-process + the GreengrassV2 control plane); every boto3
   client is pointed at it by AWS_ENDPOINT_URL
2. model: local compile of the digits model (FP32, optimised, FP16, INT8), each measured on the holdout;
   packaged as com.edgeml.model.Digits 1.0.0 (an artifact zip per platform, metadata.json, sha256)
3. build and publish: `edgeml build` of Runtime, Model and Inference (a copy of components/ under the work
   folder), then `edgeml publish` of each through the twin (S3 upload, CreateComponentVersion, DEPLOYABLE)
4. device: NOT deployed yet: the built artifacts are installed on the device directly as the nucleus
   installs them (manifest for this platform, digest checked, unarchived), IPC and Stream Manager twins
   started, the inference app run from its built artifact
5. inference: a third of the held-out digit images and one corrupt file dropped in the app's input folder
6. model update: 1.0.1 (the FP32 variant) packaged, built, published, installed directly and announced as a
   component update;
   the app swaps it in without a restart and takes the next third
7. offline: the cloud twin stops; the last third is answered and buffered in the Stream Manager stream;
   the cloud comes back on the same port and the stream catches up
8. what came back: the results stream, Kinesis (exported by Stream Manager), IoT Core, captured inputs in S3
"""

from __future__ import annotations

import json
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
from edgeml.demo.device import SimulatedCore
from edgeml.demo.digits import write_holdout_images
from edgeml.demo.report import DemoSummary, ResultFigures, render
from edgeml.demo.workdir import check_work_folder, prepare_work_folder
from edgeml.errors import EdgemlError
from edgeml.model.package import PackagedComponent
from edgeml.twin.cloud.motoserver import pointed_at
from edgeml.twin.cloud.readback import kinesis_payloads, s3_object_count
from edgeml.twin.loopback import wait_for

THING_NAME = "edgeml-demo-core"
HOLDOUT_IMAGES = 360
CORRUPT_FILE = "corrupt.png"


def split_in_thirds(images: int) -> tuple[int, int, int]:
    first = images // 3
    second = (images - first) // 2
    return first, second, images - first - second


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
        self.core = SimulatedCore(work / "device", THING_NAME)
        self.sent = 0  # images dropped so far

    # -- cloud and build ---------------------------------------------------------------------------

    def create_cloud_resources(self) -> CloudResources:
        self.console.rule(f"cloud twin: {self.cloud.endpoint_url} (moto + GreengrassV2 control plane)")
        return create_resources()

    def compile_and_package(self, bucket: str) -> PackagedComponent:
        self.console.rule("model: compile locally, package as a component version")
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

    def build_publish_and_install(self, model: PackagedComponent, bucket: str) -> None:
        self.console.rule("build: Runtime, Model and Inference (gdk layout); publish through the cloud twin")
        copy_component_sources(self.repo, self.work / "src")
        builds = build_components(self.components_dir, self.work / "model", model.version)
        self.publish(bucket)
        self.console.print(
            "device: installing the built artifacts directly (NOT deployed through the control plane yet)",
            highlight=False, soft_wrap=True,
        )
        for build in builds:
            installed = self.core.install(build)
            self.summary.components[installed.component] = installed.version
            self.summary.manifests[installed.component] = installed.manifest

    def publish(self, bucket: str, names: list[str] | None = None) -> None:
        for result in publish_components(self.components_dir, bucket, names):
            line = f"published {result.component} {result.version} ({result.arn}): {result.state}"
            self.console.print(line, highlight=False, soft_wrap=True)
            self.summary.published[result.component] = result.version

    # -- device ------------------------------------------------------------------------------------

    @property
    def inputs(self) -> Path:
        return self.core.work / str(self.core.configuration["InputDirectory"])

    def start_device(self, resources: CloudResources) -> None:
        self.console.rule(f"device {THING_NAME}: IPC and Stream Manager twins, the inference app")
        self.core.start(
            {
                # The model component's unarchived root: the app serves the newest version under it and
                # rescans on a component update, so a new model version swaps in without a restart.
                "ModelDirectory": str(self.core.installed[MODEL_COMPONENT].decompressed_path.parent),
                "ModelPollS": 0,
                "ResultKinesisStream": resources.results_kinesis_stream,
                "CaptureBucket": resources.capture_bucket,
                "ConfidenceThreshold": 0.9,  # capture every input the model is less than 90% sure of
                "CaptureSampleRate": 1.0,
                "HealthIntervalS": 1,
            }
        )

    def results(self, at_least: int) -> list[dict[str, Any]]:
        stream = str(self.core.configuration["ResultStream"])
        return wait_for(
            lambda: results if len(results := self.core.read_stream(stream)) >= at_least else None,
            f"{at_least} results in the stream {stream}",
            timeout_s=60,
        )

    def infer(self, count: int, label: str, corrupt: bool = False) -> list[dict[str, Any]]:
        """Drops the next `count` held-out images (and a corrupt file) and waits for all answers."""
        self.console.rule(f"inference: {count} images {label}")
        write_holdout_images(self.inputs, count, offset=self.sent)
        self.sent += count
        if corrupt:
            (self.inputs / CORRUPT_FILE).write_bytes(b"\x89PNG\r\n\x1a\n not an image")
        return self.results(self.sent + 1)  # + the corrupt file, dropped with the first batch

    def update_model(self, bucket: str, previous: PackagedComponent) -> None:
        self.console.rule("model update: 1.0.1 (FP32 variant) swapped in without a restart")
        slot = f"linux-{self.core.platform['architecture']}"
        update = package_digits(
            self.work / "variants", self.work / "model", bucket, "1.0.1", {slot: "cpu-fp32"}
        )
        [model_build] = build_components(
            self.components_dir, self.work / "model", update.version, [MODEL_COMPONENT]
        )
        self.publish(bucket, [MODEL_COMPONENT])
        self.summary.components[MODEL_COMPONENT] = self.core.install(model_build).version
        deferrals = self.core.ipc.announce_component_update(
            "demo-deployment-2", {MODEL_COMPONENT: update.version}
        )
        if deferrals:
            raise RuntimeError(f"the app deferred the model update: {deferrals}")
        wait_for(lambda: self.core.health()["model"]["version"] == update.version, f"model {update.version}")
        self.summary.hot_swap = {"from": previous.version, "to": update.version}

    def infer_offline(self, count: int, results_kinesis_stream: str) -> list[dict[str, Any]]:
        """Stops the cloud twin, answers `count` images into the stream, brings the cloud back."""
        self.cloud.stop()
        stream = str(self.core.configuration["ResultStream"])
        results = self.infer(count, "while the cloud twin is down")
        failing = wait_for(
            lambda: [s for s in self.core.export_statuses(stream) if s.get("error_message")],
            "the Kinesis export to report the outage",
        )
        reported = failing[0]["error_message"]
        self.console.print(f"export while offline: {reported}", highlight=False, soft_wrap=True)
        self.cloud.start()  # the same port; moto keeps its state in-process: same buckets, streams
        self.console.rule(f"cloud twin back on {self.cloud.endpoint_url}: the stream catches up")
        wait_for(
            lambda: len(kinesis_payloads(results_kinesis_stream)) >= len(results),
            "Stream Manager's export of every result to Kinesis after the outage",
            timeout_s=60,
        )
        self.summary.offline = {
            "results answered while the cloud was down": count,
            "export errors reported while down": len(failing),
        }
        return results

    # -- what came back ----------------------------------------------------------------------------

    def collect(self, resources: CloudResources, results: list[dict[str, Any]]) -> None:
        """`results`: everything in the results stream, read after the last images were answered."""
        self.console.rule("what came back")
        self.summary.results = ResultFigures.from_results(results)
        exported = [
            json.loads(payload)["request_id"]
            for payload in kinesis_payloads(resources.results_kinesis_stream)
        ]
        in_stream_order = [result["request_id"] for result in results]
        self.core.ipc.wait_iot_core_forwarded()
        low_confidence = sum(1 for r in results if r.get("status") == "ok" and not r.get("confident", True))
        prefix = f"captures/{THING_NAME}/"
        wait_for(
            lambda: s3_object_count(resources.capture_bucket, prefix) >= low_confidence or None,
            "captured inputs exported to S3",
        )
        mqtt = self.core.ipc.mqtt_log
        self.summary.exports = {
            "records exported to Kinesis": len(exported),
            "Kinesis records in stream order, none missing": list(dict.fromkeys(exported)) == in_stream_order,
            "results published to IoT Core (QoS 1)": len(mqtt),
            "of those forwarded to the cloud twin": sum(1 for entry in mqtt if entry.forwarded),
            "low-confidence inputs captured to S3": s3_object_count(resources.capture_bucket, prefix),
            "health reports in the health stream": len(
                self.core.read_stream(str(self.core.configuration["HealthStream"]), timeout_ms=0)
            ),
            "files moved to done/": len(list((self.inputs / "done").glob("*.png"))),
            "files moved to failed/ (with a .json reason)": len(list((self.inputs / "failed").glob("*.png"))),
        }

    def run(self) -> DemoSummary:
        self.cloud.start()
        try:
            with pointed_at(self.cloud.env()):  # a restarted cloud twin keeps the port, so the same env
                self.run_steps()
        finally:
            self.summary.app_exit_code = self.core.stop()
            self.cloud.stop()
        return self.summary

    def run_steps(self) -> None:
        resources = self.create_cloud_resources()
        first_model = self.compile_and_package(resources.artifact_bucket)
        self.build_publish_and_install(first_model, resources.artifact_bucket)
        self.start_device(resources)
        before, after, offline = split_in_thirds(self.images)
        self.infer(before, f"on model {first_model.version}", corrupt=True)
        self.update_model(resources.artifact_bucket, first_model)
        self.infer(after, "on model 1.0.1")
        results = self.infer_offline(offline, resources.results_kinesis_stream)
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
