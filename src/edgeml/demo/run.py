"""The demo's steps, in the order of the data flow:

1. cloud twin: a moto server on loopback; every boto3 client is pointed at it by AWS_ENDPOINT_URL
2. model: local compile of the digits model (FP32, optimised, FP16, INT8), each measured on the holdout;
   packaged as com.edgeml.model.Digits 1.0.0 (an artifact zip per platform, metadata.json, sha256)
3. build: `edgeml build` of Runtime, Model and Inference into each component's greengrass-build/
4. device: artifacts installed as the nucleus installs them (manifest for this platform, digest checked,
   unarchived), IPC and Stream Manager twins started, the inference app run from its built artifact
5. inference: held-out digit images and one corrupt file dropped in the app's input folder
6. model update: 1.0.1 (the FP32 variant) packaged, built, installed and announced as a component update;
   the app swaps it in without a restart, then takes the rest of the images
7. what came back: the results stream, Kinesis (exported by Stream Manager), IoT Core, captured inputs in S3
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console

from edgeml.demo.cloud import (
    MODEL_COMPONENT,
    CloudResources,
    build_components,
    compile_digits,
    create_resources,
    package_digits,
)
from edgeml.demo.device import SimulatedCore
from edgeml.demo.digits import write_holdout_images
from edgeml.demo.report import DemoSummary, ResultFigures, render
from edgeml.twin.cloud.motoserver import MotoServer, pointed_at
from edgeml.twin.loopback import wait_for

THING_NAME = "edgeml-demo-core"
HOLDOUT_IMAGES = 360


def kinesis_record_count(stream: str) -> int:
    kinesis = boto3.client("kinesis")
    count = 0
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            count += len(page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return count


def s3_object_count(bucket: str, prefix: str) -> int:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)


def _app_overrides(core: SimulatedCore, resources: CloudResources) -> dict[str, Any]:
    return {
        # The model component's unarchived root: the app serves the newest version under it and rescans on
        # a component update, so a new model version swaps in without a restart.
        "ModelDirectory": str(core.installed[MODEL_COMPONENT].decompressed_path.parent),
        "ModelPollS": 0,
        "ResultKinesisStream": resources.results_kinesis_stream,
        "CaptureBucket": resources.capture_bucket,
        "ConfidenceThreshold": 0.9,  # capture every input the model is less than 90% sure of
        "CaptureSampleRate": 1.0,
        "HealthIntervalS": 1,
    }


def _wait_for_results(core: SimulatedCore, count: int) -> list[dict[str, Any]]:
    stream = str(core.configuration["ResultStream"])
    return wait_for(
        lambda: results if len(results := core.read_stream(stream)) >= count else None,
        f"{count} results in the stream {stream}",
    )


def run_demo(repo: Path, work: Path, images: int, console: Console) -> DemoSummary:
    """Runs every step with `work` as scratch space (emptied first); returns what was measured."""
    if not 2 <= images <= HOLDOUT_IMAGES:
        raise ValueError(
            f"--images must be between 2 and {HOLDOUT_IMAGES} (the digits holdout), not {images}"
        )
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    summary = DemoSummary(images=images)
    with MotoServer() as moto, pointed_at(moto.env()):
        console.rule(f"cloud twin: moto on {moto.endpoint_url}")
        resources = create_resources()

        console.rule("model: compile locally, package as a component version")
        variant_set = compile_digits(repo / "models" / "digits" / "model.onnx", work / "variants")
        summary.variants = [
            {
                "target": v.target,
                "quantisation": v.quantisation,
                "accuracy_top1": v.accuracy_top1,
                "bytes": (work / "variants" / v.path).stat().st_size,
            }
            for v in variant_set.variants
        ]
        first = package_digits(work / "variants", work / "model", resources.artifact_bucket, "1.0.0")

        console.rule("build: Runtime, Model and Inference (gdk layout)")
        builds = build_components(repo / "components", work / "model", first.version)

        console.rule(f"device {THING_NAME}: install, start the twins and the inference app")
        core = SimulatedCore(work / "device", THING_NAME)
        for build in builds:
            installed = core.install(build)
            summary.components[installed.component] = installed.version
            summary.manifests[installed.component] = installed.manifest
        try:
            core.start(_app_overrides(core, resources))
            inputs = core.work / str(core.configuration["InputDirectory"])
            first_half = images // 2
            console.rule(f"inference: {first_half} images on model {first.version}")
            write_holdout_images(inputs, first_half)
            (inputs / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
            _wait_for_results(core, first_half + 1)

            console.rule("model update: 1.0.1 (FP32 variant) swapped in without a restart")
            slot = f"linux-{core.platform['architecture']}"
            second = package_digits(
                work / "variants", work / "model", resources.artifact_bucket, "1.0.1", {slot: "cpu-fp32"}
            )
            [model_build] = [
                b
                for b in build_components(repo / "components", work / "model", second.version)
                if b.component == MODEL_COMPONENT
            ]
            summary.components[MODEL_COMPONENT] = core.install(model_build).version
            deferrals = core.ipc.announce_component_update(
                "demo-deployment-2", {MODEL_COMPONENT: second.version}
            )
            if deferrals:
                raise RuntimeError(f"the app deferred the model update: {deferrals}")
            wait_for(lambda: core.health()["model"]["version"] == second.version, f"model {second.version}")
            summary.hot_swap = {"from": first.version, "to": second.version}

            console.rule(f"inference: {images - first_half} more images on model {second.version}")
            write_holdout_images(inputs, images - first_half, offset=first_half)
            results = _wait_for_results(core, images + 1)
            summary.results = ResultFigures.from_results(results)

            console.rule("what came back")
            wait_for(
                lambda: kinesis_record_count(resources.results_kinesis_stream) >= len(results),
                "Stream Manager's export of every result to Kinesis",
            )
            core.ipc.wait_iot_core_forwarded()
            low_confidence = sum(
                1 for r in results if r.get("status") == "ok" and not r.get("confident", True)
            )
            prefix = f"captures/{THING_NAME}/"
            wait_for(
                lambda: s3_object_count(resources.capture_bucket, prefix) >= low_confidence or None,
                "captured inputs exported to S3",
            )
            summary.exports = {
                "records exported to Kinesis": kinesis_record_count(resources.results_kinesis_stream),
                "results published to IoT Core (QoS 1)": len(core.ipc.mqtt_log),
                "low-confidence inputs captured to S3": s3_object_count(resources.capture_bucket, prefix),
                "health reports in the health stream": len(
                    core.read_stream(str(core.configuration["HealthStream"]), timeout_ms=0)
                ),
                "files moved to done/": len(list((inputs / "done").glob("*.png"))),
                "files moved to failed/ (with a .json reason)": len(list((inputs / "failed").glob("*.png"))),
            }
        finally:
            summary.app_exit_code = core.stop()
    render(summary, console)
    return summary
