"""SageMaker Neo compilation with plain boto3: upload, one job per target, poll, download, validate.

The flow: the source model goes to S3 as `model.tar.gz`; `create_compilation_job` runs per target
(TargetDevice, or TargetPlatform for targets without a device name); jobs are polled together with
exponential backoff; each COMPLETED job's `ModelArtifacts.S3ModelArtifacts` is downloaded and must hold
the DLR layout. The variants land in the output directory only if every target succeeded.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeml.awsnames import check_bucket_name, check_compiler_options, check_role_arn
from edgeml.errors import EdgemlError
from edgeml.model.compile.neo_artifact import extract_dlr_tarball
from edgeml.model.compile.neo_poll import Backoff, Clock, StatusListener, SystemClock, poll_jobs, stop_jobs
from edgeml.model.compile.neo_request import NeoJobSpec, create_request, job_name, output_location
from edgeml.model.compile.output import card_for, finish_stage, source_model
from edgeml.model.signature import ModelSignature, TensorSpec, read_signature
from edgeml.model.staging import check_output_dir, staged_output
from edgeml.model.targets import Target, get_target
from edgeml.model.variants import Variant, VariantSet, sha256_file

PYTORCH_SUFFIXES = (".pt", ".pth")


class S3AccessDenied(EdgemlError):
    """S3 refused the upload or download (AccessDenied / 403)."""


class S3TransferFailed(EdgemlError):
    """Any other S3 error while moving the model or Neo's output (missing bucket, missing key, ...)."""


class NeoRequestRejected(EdgemlError):
    """SageMaker refused CreateCompilationJob (validation, limits, role)."""


class MissingSource(EdgemlError):
    """The source model file does not exist."""


class MissingInputShape(EdgemlError):
    """A PyTorch source has no readable signature, so --input-shape is required."""


@dataclass(frozen=True)
class NeoRequest:
    """What `edgeml model compile --neo` was asked to do."""

    source: Path
    targets: tuple[str, ...]
    bucket: str
    role_arn: str
    out_dir: Path
    key_prefix: str = "edgeml/neo"
    input_shape: tuple[int, ...] | None = None
    framework_version: str | None = None
    compiler_options: str | None = None
    max_runtime_s: int = 900
    card: Path | None = None


def _signature(request: NeoRequest) -> tuple[str, ModelSignature]:
    if request.source.suffix.lower() in PYTORCH_SUFFIXES:
        if not request.source.is_file():
            raise MissingSource(f"{request.source}: no such file")
        if request.input_shape is None:
            raise MissingInputShape(f"{request.source}: PyTorch models need --input-shape, e.g. 1,3,224,224")
        spec = TensorSpec("input0", request.input_shape, "float32")
        return "PYTORCH", ModelSignature(spec, (TensorSpec("output0", (), "float32"),), 0)
    return "ONNX", read_signature(request.source, request.input_shape)


def source_tarball(source: Path) -> bytes:
    """`model.tar.gz` holding the source file under its own name; fixed mtimes so equal input, equal bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(source.name)
        info.size = source.stat().st_size
        info.mode = 0o644
        info.mtime = 0
        with source.open("rb") as handle:
            archive.addfile(info, handle)
    return gzip.compress(raw.getvalue(), mtime=0)


def _split_s3(uri: str) -> tuple[str, str]:
    without = uri.removeprefix("s3://")
    bucket, _, key = without.partition("/")
    return bucket, key


def _s3_error(action: str, bucket: str, key: str, error: Any) -> EdgemlError:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    if code in ("AccessDenied", "403", "Forbidden"):
        return S3AccessDenied(f"S3 {action} denied: s3://{bucket}/{key} ({code})")
    return S3TransferFailed(f"S3 {action} failed: s3://{bucket}/{key} ({code}: {message})")


def upload_source(s3: Any, source: Path, bucket: str, key_prefix: str) -> str:
    """Uploads the source tarball under a content-addressed key; returns its s3:// URI."""
    key = f"{key_prefix}/input/{sha256_file(source)[:16]}/model.tar.gz"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=source_tarball(source))
    except s3.exceptions.ClientError as error:
        raise _s3_error("upload", bucket, key, error) from error
    return f"s3://{bucket}/{key}"


def _download(s3: Any, uri: str) -> bytes:
    bucket, key = _split_s3(uri)
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.ClientError as error:
        raise _s3_error("download", bucket, key, error) from error
    return body


def _create_jobs(sagemaker: Any, specs: list[NeoJobSpec]) -> dict[str, str]:
    jobs: dict[str, str] = {}
    for spec in specs:
        try:
            sagemaker.create_compilation_job(**create_request(spec))
        except sagemaker.exceptions.ClientError as error:
            stop_jobs(sagemaker, list(jobs.values()))
            message = error.response.get("Error", {}).get("Message", str(error))
            raise NeoRequestRejected(f"Neo refused {spec.job_name}: {message}") from error
        except KeyboardInterrupt:
            stop_jobs(sagemaker, list(jobs.values()))
            raise
        jobs[spec.target.name] = spec.job_name
    return jobs


def check_request(request: NeoRequest) -> list[Target]:
    """The request's targets, once the bucket name, role ARN, compiler options and --out are valid."""
    targets: list[Target] = [get_target(name, "neo") for name in request.targets]
    check_bucket_name(request.bucket)
    check_role_arn(request.role_arn)
    if request.compiler_options is not None:
        check_compiler_options(request.compiler_options)
    check_output_dir(request.out_dir)
    return targets


def compile_neo(
    request: NeoRequest,
    *,
    sagemaker: Any,
    s3: Any,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
    on_status: StatusListener | None = None,
    now: datetime | None = None,
) -> VariantSet:
    """Compiles `request.source` for every target with Neo and writes the DLR variants into `out_dir`.

    Every option is checked locally (check_request) before anything is uploaded.
    """
    targets = check_request(request)
    framework, signature = _signature(request)
    card = card_for(request.source, request.card)
    source = source_model(request.source, signature, framework.lower())
    started = now or datetime.now(UTC)
    prefix = request.key_prefix.strip("/")
    source_uri = upload_source(s3, request.source, request.bucket, prefix)
    specs = []
    for target in targets:
        name = job_name(target.name, source.sha256, started)
        specs.append(
            NeoJobSpec(
                job_name=name,
                target=target,
                source_uri=source_uri,
                output_uri=output_location(request.bucket, prefix, name),
                framework=framework,
                input_name=signature.input.name,
                input_shape=signature.input.shape,
                role_arn=request.role_arn,
                max_runtime_s=request.max_runtime_s,
                framework_version=request.framework_version,
                compiler_options=request.compiler_options,
            )
        )
    jobs = _create_jobs(sagemaker, specs)
    finished = poll_jobs(sagemaker, jobs, backoff or Backoff(), clock or SystemClock(), on_status)
    with staged_output(request.out_dir, merge=False) as stage:
        variants = []
        for target in targets:
            artifact_uri = str(finished[target.name]["ModelArtifacts"]["S3ModelArtifacts"])
            extract_dlr_tarball(_download(s3, artifact_uri), stage / target.name, artifact_uri)
            variants.append(Variant(target.name, "dlr", target.name, "neo", None, 0))
        return finish_stage(stage, request.out_dir, source, variants, card)
