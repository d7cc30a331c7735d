"""The Neo flow end to end against the loopback moto server.

moto's compilation jobs complete at once and write nothing, and moto reports the job's
S3OutputLocation as its S3ModelArtifacts: the test places a tarball of the DLR layout there first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from model_testkit import dlr_tarball, tiny_onnx, write_card

from edgeml.model.compile.neo import NeoRequest, S3TransferFailed, compile_neo
from edgeml.model.compile.neo_request import job_name, output_location
from edgeml.model.signature import DynamicInputShape, NotAnOnnxModel
from edgeml.model.targets import UnknownTarget
from edgeml.model.variants import read_variants
from edgeml.twin.cloud.motoserver import MotoServer

NOW = datetime(2026, 11, 22, 21, 30, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/neo"


def _request(source: Path, out: Path, bucket: str, targets: tuple[str, ...]) -> NeoRequest:
    return NeoRequest(source=source, targets=targets, bucket=bucket, role_arn=ROLE, out_dir=out)


def test_compile_flow_against_moto(aws: MotoServer, tmp_path: Path) -> None:
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    bucket = "neo-flow-ok"
    s3.create_bucket(Bucket=bucket)
    source = tiny_onnx(tmp_path / "digits.onnx")
    write_card(tmp_path)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    for target in ("rasp4b", "jetson_nano"):
        output = output_location(bucket, "edgeml/neo", job_name(target, sha, NOW))
        s3.put_object(Bucket=bucket, Key=output.removeprefix(f"s3://{bucket}/"), Body=dlr_tarball())

    variants = compile_neo(
        _request(source, tmp_path / "out", bucket, ("rasp4b", "jetson_nano")),
        sagemaker=sagemaker,
        s3=s3,
        now=NOW,
    )

    assert [variant.target for variant in variants.variants] == ["rasp4b", "jetson_nano"]
    assert read_variants(tmp_path / "out") == variants
    assert (tmp_path / "out/jetson_nano/libdlr.so").is_file()
    uploaded = s3.list_objects_v2(Bucket=bucket, Prefix="edgeml/neo/input/")["Contents"]
    assert [item["Key"] for item in uploaded] == [f"edgeml/neo/input/{sha[:16]}/model.tar.gz"]
    job = sagemaker.describe_compilation_job(CompilationJobName=job_name("rasp4b", sha, NOW))
    assert job["OutputConfig"]["TargetDevice"] == "rasp4b"
    assert job["InputConfig"]["Framework"] == "ONNX"


def test_missing_neo_output_is_a_clear_error(aws: MotoServer, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="neo-flow-empty")
    source = tiny_onnx(tmp_path / "digits.onnx")
    with pytest.raises(S3TransferFailed, match="S3 download failed: s3://neo-flow-empty/edgeml/neo/output/"):
        compile_neo(
            _request(source, tmp_path / "out", "neo-flow-empty", ("ml_c5",)),
            sagemaker=boto3.client("sagemaker"),
            s3=s3,
            now=NOW,
        )
    assert not (tmp_path / "out").exists()


def _static(directory: Path) -> Path:
    return tiny_onnx(directory / "m.onnx")


def _dynamic(directory: Path) -> Path:
    return tiny_onnx(directory / "m.onnx", ["batch", 1, 8, 8])


def _not_onnx(directory: Path) -> Path:
    path = directory / "m.onnx"
    path.write_bytes(b"not onnx")
    return path


@pytest.mark.parametrize(
    ("make_source", "targets", "error", "message"),
    [
        (_static, ("rasp5",), UnknownTarget, "unknown neo target 'rasp5'"),
        (_static, ("cpu-int8",), UnknownTarget, "unknown neo target 'cpu-int8'"),
        (_not_onnx, ("rasp4b",), NotAnOnnxModel, "not an ONNX model"),
        (_dynamic, ("rasp4b",), DynamicInputShape, "--input-shape"),
    ],
)
def test_bad_input_fails_before_any_aws_call(
    tmp_path: Path,
    make_source: Callable[[Path], Path],
    targets: tuple[str, ...],
    error: type[Exception],
    message: str,
) -> None:
    # No `aws` fixture: any AWS call would hit the closed loopback port and fail differently.
    source = make_source(tmp_path)
    with pytest.raises(error, match=message):
        compile_neo(
            _request(source, tmp_path / "out", "neo-bad-input", targets),
            sagemaker=boto3.client("sagemaker"),
            s3=boto3.client("s3"),
            now=NOW,
        )
    assert not (tmp_path / "out").exists()
