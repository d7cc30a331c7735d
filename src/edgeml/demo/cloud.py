"""The demo's cloud side: the model pipeline, the component builds and their publication, with every AWS
call going to the cloud twin's endpoint through plain boto3 (pointed by AWS_ENDPOINT_URL)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import boto3

from edgeml.components.build import BuildResult, build_project, find_projects
from edgeml.components.publish import Clients, PublishResult, publish_project
from edgeml.deploy.spec import DEFAULT_NAMESPACE
from edgeml.model.compile.local_run import LocalRequest, compile_local_variants
from edgeml.model.package import PackagedComponent, PackageRequest, package
from edgeml.model.variants import VariantSet
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS, pointed_at
from edgeml.twin.cloud.rules.install import install_health_rules
from edgeml.twin.loopback import wait_for

DIGITS_TARGETS = ("cpu-fp32", "cpu-opt", "cpu-fp16", "cpu-int8")
MODEL_COMPONENT = "com.edgeml.model.Digits"
REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]
# What a gdk project needs besides its folder: each recipe.yaml is a link into recipes/.
SOURCE_FOLDERS = ("components", "recipes")
IOT_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


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
    # The health topic rules of the CDK health stack: health records on IoT Core become CloudWatch metrics,
    # which a rollout gate can read (the role is what the stack gives the rules; the twin does not check it).
    role = boto3.client("iam").create_role(
        RoleName=f"{prefix}-health-rules", AssumeRolePolicyDocument=IOT_TRUST_POLICY
    )["Role"]["Arn"]
    install_health_rules(boto3.client("iot"), prefix.replace("-", "_"), DEFAULT_NAMESPACE, role)
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


def copy_component_sources(repo: Path, work: Path) -> Path:
    """A copy of the component projects under `work` (builds write greengrass-build/ beside the sources;
    the checkout's own build folders stay as they are); the copy's components folder."""
    for folder in SOURCE_FOLDERS:
        shutil.copytree(
            repo / folder,
            work / folder,
            symlinks=True,
            ignore=shutil.ignore_patterns("greengrass-build", "zip-build", "__pycache__"),
        )
    return work / "components"


def _model_build_env(model_package_dir: Path, model_version: str) -> dict[str, str]:
    # The model component's build hook reads which packaged version to stage from the environment.
    return {"EDGEML_MODEL_PACKAGE": str(model_package_dir), "EDGEML_MODEL_VERSION": model_version}


def build_components(
    components_dir: Path, model_package_dir: Path, model_version: str, names: list[str] | None = None
) -> list[BuildResult]:
    """`edgeml build` of every component, or of `names` (what `gdk component build` does in each folder)."""
    with pointed_at(_model_build_env(model_package_dir, model_version)):
        return [build_project(project) for project in find_projects(components_dir, names)]


def _settled_status(clients: Clients, arn: str) -> dict[str, Any] | None:
    status: dict[str, Any] = clients.greengrass.describe_component(arn=arn)["status"]
    return status if status["componentState"] in ("DEPLOYABLE", "FAILED") else None


def publish_components(
    components_dir: Path, bucket: str, names: list[str] | None = None
) -> list[PublishResult]:
    """`edgeml publish` of each built component (artifacts to S3, CreateComponentVersion), waiting until
    GreengrassV2 has made each version DEPLOYABLE (the state returned); a FAILED version is a RuntimeError
    with the service's message."""
    clients = Clients.for_region(REGION)
    published = [
        publish_project(project, bucket=bucket, region=REGION, clients=clients)
        for project in find_projects(components_dir, names)
    ]
    for result in published:  # CreateComponentVersion answers the version's ARN
        status = wait_for(
            partial(_settled_status, clients, result.arn),
            f"{result.component} {result.version} to become DEPLOYABLE",
        )
        if status["componentState"] != "DEPLOYABLE":
            raise RuntimeError(f"{result.component} {result.version}: {status.get('message', 'FAILED')}")
    return [replace(result, state="DEPLOYABLE") for result in published]
