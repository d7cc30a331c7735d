"""`edgeml model ...` as a user runs it: exit codes, one-line errors, nothing half-written."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from model_testkit import tiny_onnx, variants_dir, write_card

from edgeml import cli
from edgeml.model import aws_clients
from edgeml.twin.cloud.motoserver import MotoServer

MAIN = "from edgeml.cli import main; main()"
NEO = ["--neo", "--bucket", "neo-bucket", "--role-arn", "arn:aws:iam::123456789012:role/neo"]


def _edgeml(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def _not_onnx(directory: Path) -> Path:
    path = directory / "notes.onnx"
    path.write_text("not a model")
    return path


@pytest.mark.parametrize(
    ("make_source", "extra", "message"),
    [
        (_not_onnx, ["--target", "rasp4b"], "notes.onnx: not an ONNX model"),
        (lambda d: tiny_onnx(d / "dyn.onnx", ["n", 1, 8, 8]), ["--target", "rasp4b"], "pass --input-shape"),
        (lambda d: tiny_onnx(d / "ok.onnx"), ["--target", "rasp5"], "unknown neo target 'rasp5'"),
    ],
)
def test_bad_input_exits_1_with_one_line_and_no_output(
    tmp_path: Path, make_source: Any, extra: list[str], message: str
) -> None:
    source = make_source(tmp_path)
    result = _edgeml("model", "compile", source, "--out", tmp_path / "out", *NEO, *extra)
    assert message in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_unreachable_aws_is_one_line(tmp_path: Path) -> None:
    # conftest points AWS_ENDPOINT_URL at a closed loopback port.
    source = tiny_onnx(tmp_path / "ok.onnx")
    result = _edgeml(
        "model",
        "compile",
        source,
        "--out",
        tmp_path / "out",
        *NEO,
        "-t",
        "rasp4b",
        env={"AWS_MAX_ATTEMPTS": "1"},
    )
    assert "AWS call failed: EndpointConnectionError" in _one_line_error(result)
    assert not (tmp_path / "out").exists()


def test_package_and_register_through_the_cli(moto_server: MotoServer, tmp_path: Path) -> None:
    variants = variants_dir(tmp_path / "variants")
    out = tmp_path / "build"
    args = ["model", "package", variants, "--name", "Clidigits", "--bucket", "models-b", "--out", out]
    result = _edgeml(
        *args, "--version", "1.2.3", "--register", "--approval", "Approved", env=moto_server.env()
    )
    assert result.returncode == 0, result.stderr
    recipe = yaml.safe_load((out / "recipes/com.edgeml.model.Clidigits-1.2.3.yaml").read_text())
    zips = sorted(path.name for path in (out / "artifacts/com.edgeml.model.Clidigits/1.2.3").iterdir())
    assert zips == sorted(manifest["Name"] + ".zip" for manifest in recipe["Manifests"])
    assert "registered in edgeml-model-Clidigits" in result.stderr
    bad = _edgeml(*args, "--version", "1.2", env=moto_server.env())
    assert "--version '1.2'" in _one_line_error(bad)


def test_targets_lists_local_and_neo_targets() -> None:
    result = _edgeml("model", "targets")
    assert result.returncode == 0
    for name in ("cpu-int8", "rasp4b", "jetson_nano", "linux-arm64-nvidia"):
        assert name in result.stdout


@pytest.fixture()
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Stubber]]:
    """The CLI's boto3 clients, wrapped in Stubbers (no moto: these are AWS failures moto cannot make)."""
    made = {name: boto3.client(name, region_name="us-east-1") for name in ("s3", "sagemaker")}
    stubbers = {name: Stubber(client) for name, client in made.items()}
    monkeypatch.setattr(aws_clients, "client", lambda service: made[service])
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.deactivate()


def _run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    monkeypatch.setattr(sys, "argv", ["edgeml", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_neo_job_failure_and_upload_denied_through_main(
    tmp_path: Path,
    stubbed: dict[str, Stubber],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = tiny_onnx(tmp_path / "src" / "digits.onnx")
    write_card(source.parent)
    out = tmp_path / "out"
    command = ("model", "compile", source, "--out", out, *NEO, "--target", "ml_c5")

    stubbed["s3"].add_client_error("put_object", "AccessDenied", "Access Denied", 403)
    line = _run_main(monkeypatch, capsys, *command)
    assert line.startswith("error: S3 upload denied: s3://neo-bucket/edgeml/neo/input/")
    assert not out.exists()

    stubbed["s3"].add_response("put_object", {})
    stubbed["sagemaker"].add_response("create_compilation_job", {"CompilationJobArn": "arn:x"})
    stubbed["sagemaker"].add_response(
        "describe_compilation_job",
        {
            "CompilationJobName": "j",
            "CompilationJobArn": "arn:x",
            "CompilationJobStatus": "FAILED",
            "StoppingCondition": {},
            "CreationTime": 0,
            "LastModifiedTime": 0,
            "FailureReason": "InputConfiguration: Unable to load the ONNX model",
            "ModelArtifacts": {"S3ModelArtifacts": "s3://b/none"},
            "RoleArn": "arn:aws:iam::123456789012:role/neo",
            "InputConfig": {"S3Uri": "s3://b/k", "Framework": "ONNX"},
            "OutputConfig": {"S3OutputLocation": "s3://b/o"},
        },
    )
    line = _run_main(monkeypatch, capsys, *command)
    assert line.endswith("(ml_c5) FAILED: InputConfiguration: Unable to load the ONNX model")
    assert not out.exists()


def test_local_compile_then_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tiny_onnx(tmp_path / "src" / "digits.onnx")
    write_card(source.parent)
    variants, build = tmp_path / "variants", tmp_path / "build"
    line = _run_main(monkeypatch, capsys, "model", "compile", source, "--out", variants, "-t", "cpu-int4")
    assert "unknown local target 'cpu-int4'" in line
    assert not variants.exists()

    monkeypatch.setattr(sys, "argv", ["edgeml", "model", "compile", str(source), "--out", str(variants)])
    cli.main()  # without --dataset the default local target is cpu-opt alone (INT8 needs calibration)
    package_args = ["package", str(variants), "--name", "Local", "--bucket", "b-1", "--out", str(build)]
    monkeypatch.setattr(sys, "argv", ["edgeml", "model", *package_args])
    cli.main()
    recipe = yaml.safe_load((build / "recipes/com.edgeml.model.Local-1.0.0.yaml").read_text())
    assert [manifest["Name"] for manifest in recipe["Manifests"]] == [
        "linux-amd64-nvidia", "linux-aarch64-nvidia", "linux-amd64", "linux-aarch64",
    ]  # fmt: skip
    assert "cpu-opt" in capsys.readouterr().out


def test_digits_shortcut_packages_the_committed_model(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = repo_root / "models/digits/model.onnx"
    out, variants = tmp_path / "model", tmp_path / "variants"
    args = ["model", "digits", "--bucket", "edgeml-artifacts", "--version", "1.0.0"]
    paths = ["--source", str(source), "--out", str(out), "--variants", str(variants)]
    monkeypatch.setattr(sys, "argv", ["edgeml", *args, *paths])
    cli.main()
    recipe = yaml.safe_load((out / "recipes/com.edgeml.model.Digits-1.0.0.yaml").read_text())
    committed = yaml.safe_load((repo_root / "recipes/com.edgeml.model.Digits.yaml").read_text())
    # Digests may differ across CPUs (ONNX Runtime's optimiser); names, platforms and URIs may not.
    assert [(m["Platform"], m["Artifacts"][0]["Uri"]) for m in recipe["Manifests"]] == [
        (m["Platform"], m["Artifacts"][0]["Uri"]) for m in committed["Manifests"]
    ]
    source_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    with zipfile.ZipFile(out / "artifacts/com.edgeml.model.Digits/1.0.0/linux-amd64.zip") as archive:
        metadata = json.loads(archive.read("metadata.json"))
    assert metadata["source_sha256"] == source_sha
    assert metadata["target"] == "cpu-int8" and metadata["accuracy"]["samples"] == 360
    assert metadata["accuracy"]["top1"] >= 0.97
