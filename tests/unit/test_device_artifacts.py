"""Installing a component version's artifacts as the nucleus does: manifest choice, digest, unarchive."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeml.twin.device.artifacts import ArtifactError, install_artifacts, manifest_matches, select_manifest

AMD64 = {"os": "linux", "architecture": "amd64"}


def digest(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def zip_bytes(path: Path, files: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path.read_bytes()


def recipe(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ComponentName": "com.example.Model", "ComponentVersion": "1.2.3", "Manifests": manifests}


def manifest(name: str, platform: dict[str, str], artifact_digest: str | None = None) -> dict[str, Any]:
    artifact: dict[str, Any] = {"Uri": f"s3://bucket/com.example.Model/1.2.3/{name}.zip", "Unarchive": "ZIP"}
    if artifact_digest is not None:
        artifact.update({"Digest": artifact_digest, "Algorithm": "SHA-256"})
    return {"Name": name, "Platform": platform, "Artifacts": [artifact]}


def test_the_first_matching_manifest_wins_and_accelerator_manifests_need_the_attribute() -> None:
    gpu = manifest("linux-amd64-nvidia", {**AMD64, "accelerator": "nvidia"})
    cpu = manifest("linux-amd64", AMD64)
    arm = manifest("linux-aarch64", {"os": "linux", "architecture": "aarch64"})
    document = recipe([gpu, arm, cpu])
    assert select_manifest(document, AMD64)["Name"] == "linux-amd64"
    assert select_manifest(document, {**AMD64, "accelerator": "nvidia"})["Name"] == "linux-amd64-nvidia"
    assert manifest_matches({"os": "*"}, AMD64)
    with pytest.raises(ArtifactError, match=r"com.example.Model 1.2.3: no manifest for platform"):
        select_manifest(document, {"os": "windows", "architecture": "amd64"})


def test_install_verifies_the_digest_and_unarchives_where_the_recipe_variables_point(tmp_path: Path) -> None:
    source = tmp_path / "build"
    source.mkdir()
    data = zip_bytes(source / "linux-amd64.zip", {"model.onnx": b"onnx", "metadata.json": b"{}"})
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe([manifest("linux-amd64", AMD64, digest(data))])))

    installed = install_artifacts(recipe_file, source, tmp_path / "root", AMD64)

    assert installed.version == "1.2.3" and installed.manifest == "linux-amd64"
    assert installed.path == tmp_path / "root/packages/artifacts/com.example.Model/1.2.3"
    assert (installed.path / "linux-amd64.zip").read_bytes() == data
    unpacked = installed.decompressed_path / "linux-amd64"
    assert (unpacked / "model.onnx").read_bytes() == b"onnx"


def test_a_tampered_artifact_is_refused_before_anything_is_unpacked(tmp_path: Path) -> None:
    source = tmp_path / "build"
    source.mkdir()
    data = zip_bytes(source / "linux-amd64.zip", {"model.onnx": b"onnx"})
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe([manifest("linux-amd64", AMD64, digest(data + b"x"))])))
    with pytest.raises(ArtifactError, match=r"linux-amd64.zip: SHA-256 digest .* != recipe's"):
        install_artifacts(recipe_file, source, tmp_path / "root", AMD64)
    assert not list((tmp_path / "root").rglob("model.onnx"))


def test_a_missing_artifact_is_named(tmp_path: Path) -> None:
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe([manifest("linux-amd64", AMD64)])))
    with pytest.raises(ArtifactError, match=r"linux-amd64.zip: artifact named in recipe.yaml is missing"):
        install_artifacts(recipe_file, tmp_path, tmp_path / "root", AMD64)
