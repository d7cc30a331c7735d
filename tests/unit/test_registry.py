"""Model Registry registration of packaged component versions, against the loopback moto server."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from model_testkit import variants_dir

from edgeml.model.package import PackageRequest, package
from edgeml.model.registry import RegistryError, group_name, register
from edgeml.twin.cloud.motoserver import MotoServer


def test_register_creates_group_once_and_one_package_per_version(aws: MotoServer, tmp_path: Path) -> None:
    sagemaker = boto3.client("sagemaker")
    variants = variants_dir(tmp_path / "variants")
    first = package(PackageRequest(variants, "Regone", "1.0.0", "models-b", tmp_path / "out"))
    second = package(PackageRequest(variants, "Regone", "1.0.1", "models-b", tmp_path / "out"))

    one = register(sagemaker, first)
    two = register(sagemaker, second, approval="Approved")

    assert one.group == two.group == group_name("com.edgeml.model.Regone") == "edgeml-model-Regone"
    groups = sagemaker.list_model_package_groups(NameContains="edgeml-model-Regone")[
        "ModelPackageGroupSummaryList"
    ]
    assert len(groups) == 1
    described = sagemaker.describe_model_package(ModelPackageName=two.model_package_arn)
    assert described["ModelApprovalStatus"] == "Approved"
    properties = described["CustomerMetadataProperties"]
    assert properties["component"] == "com.edgeml.model.Regone"
    assert properties["component_version"] == "1.0.1"
    assert properties["linux-aarch64.target"] == "rasp4b"
    assert properties["linux-aarch64.accuracy_top1"] == "not measured"
    assert properties["linux-amd64.accuracy_top1"] == "0.9650"
    assert properties["linux-amd64.artifact"] == "s3://models-b/com.edgeml.model.Regone/1.0.1/linux-amd64.zip"
    first_described = sagemaker.describe_model_package(ModelPackageName=one.model_package_arn)
    assert first_described["ModelApprovalStatus"] == "PendingManualApproval"
    assert first_described["CustomerMetadataProperties"]["component_version"] == "1.0.0"


def test_unknown_approval_status_is_refused_before_any_call(tmp_path: Path) -> None:
    packaged = package(
        PackageRequest(variants_dir(tmp_path / "v"), "Regtwo", "1.0.0", "models-b", tmp_path / "o")
    )
    with pytest.raises(RegistryError, match="--approval 'Maybe'"):
        register(boto3.client("sagemaker"), packaged, approval="Maybe")
