"""The demo's cloud side: the model pipeline and the component builds, with every AWS call going to the
cloud twin's moto server through plain boto3 (pointed by AWS_ENDPOINT_URL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import boto3

from edgeml.components.build import BuildResult, build_project, find_projects
from edgeml.model.compile.local_run import LocalRequest, compile_local_variants
from edgeml.model.package import PackagedComponent, PackageRequest, package
from edgeml.model.variants import VariantSet
from edgeml.twin.cloud.motoserver import pointed_at

DIGITS_TARGETS = ("cpu-fp32", "cpu-opt", "cpu-fp16", "cpu-int8")
MODEL_COMPONENT = "com.edgeml.model.Digits"


@dataclass(frozen=True)
class CloudResources:
    """What the demo creates in the cloud twin before the device starts."""

    artifact_bucket: str
    capture_bucket: str
    results_kinesis_stream: str


def create_resources(prefix: str = "edgeml-demo") -> CloudResources:
    """S3 buckets for artifacts and captured inputs, and the Kinesis stream results are exported to."""
    resources = CloudResources(f"{prefix}-artifacts", f"{prefix}-captures", f"{prefix}-results")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=resources.artifact_bucket)
    s3.create_bucket(Bucket=resources.capture_bucket)
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=resources.results_kinesis_stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=resources.results_kinesis_stream, WaiterConfig={"Delay": 0.1}
    )
    return resources


def compile_digits(source: Path, variants_dir: Path) -> VariantSet:
    """Local compile (the offline default): FP32, optimised, FP16 and INT8 QDQ, each measured on the
    held-out digits."""
    request = LocalRequest(source, DIGITS_TARGETS, variants_dir, (1, 1, 8, 8), "digits")
    return compile_local_variants(request)


def package_digits(
    variants_dir: Path, out_dir: Path, bucket: str, version: str, assignments: dict[str, str] | None = None
) -> PackagedComponent:
    """One model component version: an artifact zip per platform manifest, with metadata.json."""
    request = PackageRequest(variants_dir, "Digits", version, bucket, out_dir, assignments=assignments or {})
    return package(request)


def build_components(components_dir: Path, model_package_dir: Path, model_version: str) -> list[BuildResult]:
    """`edgeml build` of every component (what `gdk component build` does in each folder)."""
    # The model component's build hook reads which packaged version to stage from the environment.
    with pointed_at({"EDGEML_MODEL_PACKAGE": str(model_package_dir), "EDGEML_MODEL_VERSION": model_version}):
        return [build_project(project) for project in find_projects(components_dir)]
