"""The three edgeml components published through a cloud twin, and the deployment that takes them to
device twins: what the demo, the fleet test and the benchmark share.

`publish_edgeml_stack` builds a lone copy of components/ and recipes/ (the checkout's build folders stay
untouched), compiles the digits model (FP32) and packages it, then builds and publishes every component
with `edgeml build`/`edgeml publish`'s code through plain boto3 pointed at the twin. `edgeml_deployment`
is the CreateDeployment `components` a deployer would write: only WheelhouseDir (the shared wheel cache,
so each device's real Install step builds its venv offline) and the result stream's Kinesis target.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS, pointed_at

INFERENCE, RUNTIME, MODEL = "com.edgeml.Inference", "com.edgeml.Runtime", "com.edgeml.model.Digits"
REPO = Path(__file__).resolve().parents[5]


def wheelhouse(python: str = "3.12") -> Path:
    """The shared wheel cache for this machine's platform and a device Python version."""
    return Path.home() / ".cache" / "edgeml" / "wheelhouse" / f"linux-x86_64-py{python}"


def publish_edgeml_stack(
    endpoint_url: str,
    work: Path,
    bucket: str,
    model_version: str = "1.0.0",
    repo: Path = REPO,
    model_source: Path | None = None,
) -> dict[str, str]:
    """Builds and publishes Runtime, Model and Inference; returns component -> published version.

    `model_source`: a digits model other than the repository's ONNX file, e.g. the same model as .tflite
    (compiled as it is, -t litert-fp32), packaged as the same com.edgeml.model.Digits component."""
    from edgeml.components.build import build_project, find_projects
    from edgeml.components.publish import Clients, publish_project
    from edgeml.model.compile.local_run import LocalRequest, compile_local_variants
    from edgeml.model.package import PackageRequest, package
    from edgeml.model.signature import model_framework

    source = model_source or repo / "models" / "digits" / "model.onnx"
    tflite = model_framework(source) == "tflite"

    for folder in ("components", "recipes"):
        shutil.copytree(
            repo / folder,
            work / folder,
            symlinks=True,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("greengrass-build", "__pycache__", "zip-build"),
        )
    variants = work / "variants"
    targets, shape = (("litert-fp32",), None) if tflite else (("cpu-fp32",), (1, 1, 8, 8))
    compile_local_variants(LocalRequest(source, targets, variants, shape, "digits"))
    package(PackageRequest(variants, "Digits", model_version, bucket, work / "package"))
    env = {
        **TWIN_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "EDGEML_MODEL_PACKAGE": str(work / "package"),
        "EDGEML_MODEL_VERSION": model_version,
    }
    versions = {}
    with pointed_at(env):
        clients = Clients.for_region("us-east-1")
        for project in find_projects(work / "components"):
            build_project(project)
            published = publish_project(project, bucket=bucket, clients=clients)
            versions[published.component] = published.version
    return versions


def publish_model_version(endpoint_url: str, work: Path, bucket: str, version: str) -> str:
    """A new com.edgeml.model.Digits version (after `publish_edgeml_stack` in the same `work`): packaged from
    the variants compiled there, built and published; returns the published version."""
    from edgeml.components.build import build_project
    from edgeml.components.publish import Clients, publish_project
    from edgeml.model.package import PackageRequest, package

    package_dir = work / f"package-{version}"
    package(PackageRequest(work / "variants", "Digits", version, bucket, package_dir))
    project = work / "components" / "com.edgeml.Model"
    env = {
        **TWIN_CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint_url,
        "EDGEML_MODEL_PACKAGE": str(package_dir),
        "EDGEML_MODEL_VERSION": version,
    }
    with pointed_at(env):
        build_project(project)
        return publish_project(project, bucket=bucket, clients=Clients.for_region("us-east-1")).version


def edgeml_deployment(
    versions: dict[str, str],
    wheel_cache: Path,
    kinesis_stream: str = "",
    inference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateDeployment `components` for the three components (inference: more configuration to merge)."""
    return {
        RUNTIME: {
            "componentVersion": versions[RUNTIME],
            "configurationUpdate": {"merge": json.dumps({"WheelhouseDir": str(wheel_cache)})},
        },
        MODEL: {"componentVersion": versions[MODEL]},
        INFERENCE: {
            "componentVersion": versions[INFERENCE],
            "configurationUpdate": {
                "merge": json.dumps({"ResultKinesisStream": kinesis_stream, **(inference or {})})
            },
        },
    }
