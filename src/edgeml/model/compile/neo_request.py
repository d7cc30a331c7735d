"""The SageMaker Neo CreateCompilationJob request for one target, built from the source model's signature."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edgeml.model.targets import Target

_JOB_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9-]+")
DEFAULT_PYTORCH_VERSION = "2.0"


@dataclass(frozen=True)
class NeoJobSpec:
    """Everything one compilation job needs."""

    job_name: str
    target: Target
    source_uri: str  # s3://.../model.tar.gz
    output_uri: str  # S3OutputLocation
    framework: str  # "ONNX" | "PYTORCH"
    input_name: str
    input_shape: tuple[int, ...]
    role_arn: str
    max_runtime_s: int = 900
    framework_version: str | None = None  # PYTORCH only
    compiler_options: str | None = None  # JSON string passed through to Neo


def job_name(target: str, source_sha256: str, now: datetime) -> str:
    """A unique, valid CompilationJobName (letters, digits, hyphens; at most 63 characters)."""
    safe_target = _JOB_NAME_UNSAFE.sub("-", target).strip("-")
    return f"edgeml-{safe_target}-{source_sha256[:8]}-{now:%Y%m%d%H%M%S}"[:63]


def output_location(bucket: str, key_prefix: str, name: str) -> str:
    """S3OutputLocation of the job `name`; Neo writes its tarball under it."""
    return f"s3://{bucket}/{key_prefix}/output/{name}"


def data_input_config(framework: str, input_name: str, input_shape: tuple[int, ...]) -> str:
    """Neo's DataInputConfig: {"<input name>": [shape]} for ONNX and PyTorch (PyTorch names are input0...)."""
    return json.dumps({input_name: list(input_shape)}, separators=(",", ":"))


def create_request(spec: NeoJobSpec) -> dict[str, Any]:
    """Keyword arguments for `sagemaker.create_compilation_job`."""
    input_config: dict[str, Any] = {
        "S3Uri": spec.source_uri,
        "DataInputConfig": data_input_config(spec.framework, spec.input_name, spec.input_shape),
        "Framework": spec.framework,
    }
    if spec.framework == "PYTORCH":
        input_config["FrameworkVersion"] = spec.framework_version or DEFAULT_PYTORCH_VERSION
    output_config: dict[str, Any] = {"S3OutputLocation": spec.output_uri}
    neo_platform = spec.target.neo_platform
    if neo_platform is None:
        output_config["TargetDevice"] = spec.target.name
    else:
        platform: dict[str, str] = {"Os": neo_platform.os, "Arch": neo_platform.arch}
        if neo_platform.accelerator:
            platform["Accelerator"] = neo_platform.accelerator
        output_config["TargetPlatform"] = platform
    if spec.compiler_options:
        output_config["CompilerOptions"] = spec.compiler_options
    return {
        "CompilationJobName": spec.job_name,
        "RoleArn": spec.role_arn,
        "InputConfig": input_config,
        "OutputConfig": output_config,
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_s},
    }
