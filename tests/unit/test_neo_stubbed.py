"""Neo compile against botocore's Stubber: request shapes, backoff, FAILED/STOPPED, timeout, S3 errors."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from model_testkit import dlr_tarball, tiny_onnx, write_card

from edgeml.model.compile.neo import NeoRequest, S3AccessDenied, compile_neo, source_tarball
from edgeml.model.compile.neo_artifact import NeoArtifactInvalid
from edgeml.model.compile.neo_poll import Backoff, NeoJobFailed, NeoTimeout, poll_jobs
from edgeml.model.compile.neo_request import job_name

NOW = datetime(2026, 11, 22, 21, 0, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::123456789012:role/neo"
BUCKET = "neo-bucket"


class FakeClock:
    """Advances only when slept on; records every wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture()
def clients() -> Iterator[tuple[Any, Stubber, Any, Stubber]]:
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(sagemaker) as sm_stub, Stubber(s3) as s3_stub:
        yield sagemaker, sm_stub, s3, s3_stub
        sm_stub.assert_no_pending_responses()
        s3_stub.assert_no_pending_responses()


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    model = tiny_onnx(tmp_path / "src" / "digits.onnx")
    write_card(model.parent)
    return model


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _request(source: Path, out: Path, targets: tuple[str, ...] = ("rasp4b",)) -> NeoRequest:
    return NeoRequest(source=source, targets=targets, bucket=BUCKET, role_arn=ROLE, out_dir=out)


def _expect_upload(s3_stub: Stubber, source: Path) -> str:
    key = f"edgeml/neo/input/{_sha(source)[:16]}/model.tar.gz"
    s3_stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": key, "Body": ANY})
    return f"s3://{BUCKET}/{key}"


def _describe(name: str, status: str, reason: str = "", artifacts: str = "") -> dict[str, Any]:
    return {
        "CompilationJobName": name,
        "CompilationJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:compilation-job/{name}",
        "CompilationJobStatus": status,
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        "FailureReason": reason,
        "ModelArtifacts": {"S3ModelArtifacts": artifacts or f"s3://{BUCKET}/edgeml/neo/output/{name}"},
        "RoleArn": ROLE,
        "InputConfig": {"S3Uri": "s3://x/y", "Framework": "ONNX"},
        "OutputConfig": {"S3OutputLocation": f"s3://{BUCKET}/edgeml/neo/output/{name}"},
    }


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_completed_job_exact_requests_backoff_and_dlr_variant(
    clients: tuple[Any, Stubber, Any, Stubber], source: Path, tmp_path: Path
) -> None:
    sagemaker, sm_stub, s3, s3_stub = clients
    name = job_name("rasp4b", _sha(source), NOW)
    source_uri = _expect_upload(s3_stub, source)
    output = f"s3://{BUCKET}/edgeml/neo/output/{name}"
    sm_stub.add_response(
        "create_compilation_job",
        {"CompilationJobArn": "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/x"},
        {
            "CompilationJobName": name,
            "RoleArn": ROLE,
            "InputConfig": {
                "S3Uri": source_uri,
                "DataInputConfig": json.dumps({"input": [1, 1, 8, 8]}, separators=(",", ":")),
                "Framework": "ONNX",
            },
            "OutputConfig": {"S3OutputLocation": output, "TargetDevice": "rasp4b"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        },
    )
    for status in ("STARTING", "INPROGRESS", "INPROGRESS"):
        sm_stub.add_response(
            "describe_compilation_job", _describe(name, status), {"CompilationJobName": name}
        )
    artifact = f"{output}/model-LINUX_ARM64.tar.gz"
    sm_stub.add_response("describe_compilation_job", _describe(name, "COMPLETED", artifacts=artifact))
    s3_stub.add_response(
        "get_object",
        {"Body": _body(dlr_tarball())},
        {"Bucket": BUCKET, "Key": f"edgeml/neo/output/{name}/model-LINUX_ARM64.tar.gz"},
    )
    clock, seen = FakeClock(), []
    variants = compile_neo(
        _request(source, tmp_path / "out"),
        sagemaker=sagemaker,
        s3=s3,
        backoff=Backoff(initial_s=2, factor=2, max_s=5),
        clock=clock,
        on_status=lambda target, job, status: seen.append(status),
        now=NOW,
    )
    assert clock.sleeps == [2, 4, 5]
    assert seen == ["STARTING", "INPROGRESS", "INPROGRESS", "COMPLETED"]
    [variant] = variants.variants
    assert (variant.target, variant.framework, variant.quantisation) == ("rasp4b", "dlr", "neo")
    assert sorted(path.name for path in (tmp_path / "out/rasp4b").iterdir()) == sorted(
        ["compiled.so", "compiled.params", "compiled_model.json", "compiled.meta", "libdlr.so"]
    )
    assert (tmp_path / "out/model-card.json").is_file()
    assert variants.source.sha256 == _sha(source)


def test_target_platform_and_compiler_options_request(
    clients: tuple[Any, Stubber, Any, Stubber], source: Path, tmp_path: Path
) -> None:
    sagemaker, sm_stub, s3, s3_stub = clients
    name = job_name("linux-arm64-nvidia", _sha(source), NOW)
    source_uri = _expect_upload(s3_stub, source)
    options = '{"gpu-code": "sm_72", "trt-ver": "8.4.0", "cuda-ver": "11.4"}'
    sm_stub.add_response(
        "create_compilation_job",
        {"CompilationJobArn": "arn:aws:sagemaker:us-east-1:123456789012:compilation-job/x"},
        {
            "CompilationJobName": name,
            "RoleArn": ROLE,
            "InputConfig": {
                "S3Uri": source_uri,
                "DataInputConfig": '{"input":[1,1,8,8]}',
                "Framework": "ONNX",
            },
            "OutputConfig": {
                "S3OutputLocation": f"s3://{BUCKET}/edgeml/neo/output/{name}",
                "TargetPlatform": {"Os": "LINUX", "Arch": "ARM64", "Accelerator": "NVIDIA"},
                "CompilerOptions": options,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        },
    )
    sm_stub.add_response("describe_compilation_job", _describe(name, "FAILED", "ClientError: bad gpu-code"))
    request = NeoRequest(
        source=source,
        targets=("linux-arm64-nvidia",),
        bucket=BUCKET,
        role_arn=ROLE,
        out_dir=tmp_path / "out",
        compiler_options=options,
    )
    with pytest.raises(NeoJobFailed, match="FAILED: ClientError: bad gpu-code"):
        compile_neo(request, sagemaker=sagemaker, s3=s3, clock=FakeClock(), now=NOW)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("status", ["FAILED", "STOPPED"])
def test_failed_or_stopped_job_raises_with_failure_reason_and_writes_nothing(
    clients: tuple[Any, Stubber, Any, Stubber], source: Path, tmp_path: Path, status: str
) -> None:
    sagemaker, sm_stub, s3, s3_stub = clients
    _expect_upload(s3_stub, source)
    names = [job_name(target, _sha(source), NOW) for target in ("rasp4b", "jetson_nano")]
    for name in names:
        sm_stub.add_response("create_compilation_job", {"CompilationJobArn": "arn:x"}, {
            "CompilationJobName": name, "RoleArn": ANY, "InputConfig": ANY, "OutputConfig": ANY,
            "StoppingCondition": ANY,
        })  # fmt: skip
    sm_stub.add_response("describe_compilation_job", _describe(names[0], status, "Unsupported operator: Foo"))
    # The other job is still running: it is asked to stop.
    sm_stub.add_response("stop_compilation_job", {}, {"CompilationJobName": names[1]})
    with pytest.raises(NeoJobFailed) as raised:
        compile_neo(
            _request(source, tmp_path / "out", ("rasp4b", "jetson_nano")),
            sagemaker=sagemaker,
            s3=s3,
            clock=FakeClock(),
            now=NOW,
        )
    assert str(raised.value) == f"Neo job {names[0]} (rasp4b) {status}: Unsupported operator: Foo"
    assert not (tmp_path / "out").exists()


def test_timeout_stops_the_job(
    clients: tuple[Any, Stubber, Any, Stubber], source: Path, tmp_path: Path
) -> None:
    sagemaker, sm_stub, s3, s3_stub = clients
    _expect_upload(s3_stub, source)
    name = job_name("ml_c5", _sha(source), NOW)
    sm_stub.add_response("create_compilation_job", {"CompilationJobArn": "arn:x"}, None)
    backoff = Backoff(initial_s=10, factor=2, max_s=40, timeout_s=60)
    assert backoff.waits() == [10, 20, 30]
    for _ in range(4):
        sm_stub.add_response("describe_compilation_job", _describe(name, "INPROGRESS"))
    sm_stub.add_response("stop_compilation_job", {}, {"CompilationJobName": name})
    clock = FakeClock()
    with pytest.raises(NeoTimeout, match=f"{name} still running after 60 s"):
        compile_neo(
            _request(source, tmp_path / "out", ("ml_c5",)),
            sagemaker=sagemaker,
            s3=s3,
            backoff=backoff,
            clock=clock,
            now=NOW,
        )
    assert clock.now == 60
    assert not (tmp_path / "out").exists()


def test_upload_denied_names_bucket_and_key(
    clients: tuple[Any, Stubber, Any, Stubber], source: Path, tmp_path: Path
) -> None:
    sagemaker, _, s3, s3_stub = clients
    s3_stub.add_client_error("put_object", "AccessDenied", "Access Denied", 403)
    with pytest.raises(S3AccessDenied) as raised:
        compile_neo(
            _request(source, tmp_path / "out"), sagemaker=sagemaker, s3=s3, clock=FakeClock(), now=NOW
        )
    key = f"edgeml/neo/input/{_sha(source)[:16]}/model.tar.gz"
    assert str(raised.value) == f"S3 upload denied: s3://{BUCKET}/{key} (AccessDenied)"
    assert not (tmp_path / "out").exists()


def test_incomplete_neo_output_names_the_missing_files(
    clients: tuple[Any, Stubber, Any, Stubber], source: Path, tmp_path: Path
) -> None:
    sagemaker, sm_stub, s3, s3_stub = clients
    _expect_upload(s3_stub, source)
    name = job_name("rasp4b", _sha(source), NOW)
    sm_stub.add_response("create_compilation_job", {"CompilationJobArn": "arn:x"}, None)
    sm_stub.add_response("describe_compilation_job", _describe(name, "COMPLETED"))
    partial = dlr_tarball(("compiled.so", "compiled_model.json", "compiled.meta"))
    s3_stub.add_response("get_object", {"Body": _body(partial)}, None)
    with pytest.raises(NeoArtifactInvalid, match=r"lacks compiled\.params, libdlr\.so \(DLR layout\)"):
        compile_neo(
            _request(source, tmp_path / "out"), sagemaker=sagemaker, s3=s3, clock=FakeClock(), now=NOW
        )
    assert not (tmp_path / "out").exists()


def test_source_tarball_holds_the_model_and_is_reproducible(source: Path) -> None:
    first = source_tarball(source)
    assert first == source_tarball(source)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(first))) as archive:
        assert archive.getnames() == ["digits.onnx"]
        member = archive.extractfile("digits.onnx")
        assert member is not None and member.read() == source.read_bytes()


class InterruptedClock(FakeClock):
    """Ctrl-C arrives while waiting for the next poll."""

    def sleep(self, seconds: float) -> None:
        raise KeyboardInterrupt


def test_ctrl_c_while_polling_stops_only_the_jobs_still_running(
    clients: tuple[Any, Stubber, Any, Stubber],
) -> None:
    sagemaker, sm_stub, _s3, _s3_stub = clients
    done, running = "edgeml-rasp4b-done", "edgeml-jetson-nano-running"
    sm_stub.add_response(
        "describe_compilation_job", _describe(done, "COMPLETED"), {"CompilationJobName": done}
    )
    sm_stub.add_response(
        "describe_compilation_job", _describe(running, "INPROGRESS"), {"CompilationJobName": running}
    )
    sm_stub.add_response("stop_compilation_job", {}, {"CompilationJobName": running})
    with pytest.raises(KeyboardInterrupt):
        poll_jobs(sagemaker, {"rasp4b": done, "jetson_nano": running}, Backoff(), InterruptedClock())
