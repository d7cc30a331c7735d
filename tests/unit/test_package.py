"""Packaging variants into one model component version: zips, metadata.json, recipe, versions."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from model_testkit import card_dict, variants_dir

from edgeml.awsnames import InvalidAwsValue
from edgeml.model.card import BadModelCard
from edgeml.model.package import PackageRequest, PackagingError, package
from edgeml.model.recipe import BadComponentName, BadVersion
from edgeml.model.variants import BadVariantsDir

SCHEMA = Path(__file__).parent / "data" / "gdk-1.6.2-recipe_schema.json"
METADATA_KEYS = {
    "schema", "name", "version", "framework", "target", "platform", "model_file", "source_sha256",
    "input", "output", "preprocessing", "postprocessing", "labels", "quantisation", "accuracy",
    "dataset_id", "created", "baseline", "files",
}  # fmt: skip


def _request(variants: Path, out: Path, **overrides: Any) -> PackageRequest:
    fields: dict[str, Any] = {
        "variants_dir": variants,
        "name": "Digits",
        "version": "1.0.0",
        "bucket": "models-b",
    }
    fields.update(overrides)
    return PackageRequest(out_dir=out, **fields)


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key).lower(): _lower_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_lower_keys(item) for item in value]
    return value


def _zip_metadata(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(contents.pop("metadata.json")), contents


@pytest.fixture()
def variants(tmp_path: Path) -> Path:
    return variants_dir(tmp_path / "variants")


def test_one_zip_per_platform_manifest_with_gpu_manifests_first(variants: Path, tmp_path: Path) -> None:
    packaged = package(_request(variants, tmp_path / "out"))
    recipe = yaml.safe_load(packaged.recipe_path.read_text())
    assert packaged.recipe_path == tmp_path / "out/recipes/com.edgeml.model.Digits-1.0.0.yaml"
    platforms = [manifest["Platform"] for manifest in recipe["Manifests"]]
    assert platforms == [
        {"os": "linux", "architecture": "amd64", "accelerator": "nvidia"},
        {"os": "linux", "architecture": "aarch64", "accelerator": "nvidia"},
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "aarch64"},
    ]  # no linux-arm manifest: com.edgeml.Runtime cannot install on 32-bit ARM
    chosen = {artifact.platform.slot: artifact.variant.target for artifact in packaged.artifacts}
    # Neo's rasp4b build serves aarch64; INT8 serves the other CPUs; GPUs get the float variant.
    assert chosen == {
        "linux-amd64-nvidia": "cpu-opt",
        "linux-aarch64-nvidia": "cpu-opt",
        "linux-amd64": "cpu-int8",
        "linux-aarch64": "rasp4b",
    }
    with pytest.raises(PackagingError, match=r"--assign linux-arm=cpu-int8: unknown platform"):
        package(_request(variants, tmp_path / "refused", assignments={"linux-arm": "cpu-int8"}))
    assert not (tmp_path / "refused").exists()


def test_recipe_validates_against_gdk_schema_and_digests_match_zips(variants: Path, tmp_path: Path) -> None:
    packaged = package(_request(variants, tmp_path / "out", key_prefix="fleet/"))
    recipe = yaml.safe_load(packaged.recipe_path.read_text())
    jsonschema.validate(_lower_keys(recipe), json.loads(SCHEMA.read_text()))
    assert recipe["RecipeFormatVersion"] == "2020-01-25"
    assert recipe["ComponentName"] == "com.edgeml.model.Digits"
    for manifest, artifact in zip(recipe["Manifests"], packaged.artifacts, strict=True):
        [entry] = manifest["Artifacts"]
        assert entry["Uri"] == f"s3://models-b/fleet/com.edgeml.model.Digits/1.0.0/{artifact.zip_path.name}"
        assert entry["Unarchive"] == "ZIP" and entry["Algorithm"] == "SHA-256"
        assert base64.b64decode(entry["Digest"]) == hashlib.sha256(artifact.zip_path.read_bytes()).digest()


def test_metadata_follows_the_contract_and_lists_every_file(variants: Path, tmp_path: Path) -> None:
    packaged = package(_request(variants, tmp_path / "out"))
    source_sha = hashlib.sha256((variants / "source.onnx").read_bytes()).hexdigest()
    for artifact in packaged.artifacts:
        metadata, files = _zip_metadata(artifact.zip_path)
        assert set(metadata) == METADATA_KEYS
        assert metadata["schema"] == "edgeml.model-metadata/1"
        assert metadata["source_sha256"] == source_sha
        assert metadata["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        assert metadata["labels"] == card_dict()["labels"]
        assert metadata["input"] == {
            "name": "input",
            "shape": [1, 1, 8, 8],
            "dtype": "float32",
            "layout": "NCHW",
        }
        assert metadata["platform"]["architecture"] == artifact.platform.architecture
        if metadata["framework"] == "dlr":
            assert metadata["model_file"] == "."
            assert {"compiled.so", "libdlr.so"} <= set(files)
        else:
            assert metadata["model_file"] == "model.onnx" and set(files) == {"model.onnx"}
            expected = (variants / f"{metadata['target']}.onnx").read_bytes()
            assert files["model.onnx"] == expected


def test_repackaging_identical_inputs_gives_identical_bytes(variants: Path, tmp_path: Path) -> None:
    first = package(_request(variants, tmp_path / "one"))
    (variants / "cpu-int8.onnx").touch()  # a newer mtime must not matter
    second = package(_request(variants, tmp_path / "two"))
    again = package(_request(variants, tmp_path / "one"))
    for a, b, c in zip(first.artifacts, second.artifacts, again.artifacts, strict=True):
        assert a.zip_path.read_bytes() == b.zip_path.read_bytes() == c.zip_path.read_bytes()
    assert first.recipe_path.read_bytes() == second.recipe_path.read_bytes()
    with zipfile.ZipFile(first.artifacts[0].zip_path) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == sorted(info.filename for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_next_patch_bumps_the_latest_version_in_out_and_recipe_file(variants: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert package(_request(variants, out, version="NEXT_PATCH")).version == "1.0.0"
    assert package(_request(variants, out, version="NEXT_PATCH")).version == "1.0.1"
    recipe_file = tmp_path / "recipes" / "com.edgeml.model.Digits.yaml"
    recipe_file.parent.mkdir()
    recipe_file.write_text("ComponentVersion: 2.3.4\n")
    packaged = package(_request(variants, out, version="NEXT_PATCH", recipe_file=recipe_file))
    assert packaged.version == "2.3.5"
    assert yaml.safe_load(recipe_file.read_text())["ComponentVersion"] == "2.3.5"
    assert sorted(path.name for path in (out / "artifacts/com.edgeml.model.Digits").iterdir()) == [
        "1.0.0", "1.0.1", "2.3.5",
    ]  # fmt: skip


def test_assign_overrides_and_rejects_a_variant_built_for_another_platform(
    variants: Path, tmp_path: Path
) -> None:
    packaged = package(_request(variants, tmp_path / "a", assignments={"linux-amd64": "cpu-opt"}))
    assert {a.platform.slot: a.variant.target for a in packaged.artifacts}["linux-amd64"] == "cpu-opt"
    with pytest.raises(PackagingError, match="rasp4b runs on linux-aarch64, not linux-amd64"):
        package(_request(variants, tmp_path / "b", assignments={"linux-amd64": "rasp4b"}))
    with pytest.raises(PackagingError, match="unknown platform"):
        package(_request(variants, tmp_path / "c", assignments={"windows-amd64": "cpu-opt"}))
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"version": "1.0"}, BadVersion, "semantic version"),
        ({"name": "digits.v2"}, BadComponentName, "--name"),
        ({"bucket": "Not_A_Bucket"}, InvalidAwsValue, "--bucket .Not_A_Bucket.: not a valid S3 bucket name"),
        ({"card_path": Path("/nonexistent/card.json")}, BadModelCard, "no model card"),
    ],
)
def test_bad_input_names_the_cause_and_writes_nothing(
    variants: Path, tmp_path: Path, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(error, match=message):
        package(_request(variants, out, **change))
    assert not out.exists()
    assert [path.name for path in tmp_path.iterdir()] == ["variants"]  # no staging folder left behind


def test_missing_variant_file_is_reported(variants: Path, tmp_path: Path) -> None:
    (variants / "cpu-int8.onnx").unlink()
    with pytest.raises(BadVariantsDir, match="cpu-int8"):
        package(_request(variants, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_32_bit_arm_build_is_refused_naming_the_variant(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"^variant rasp3b runs on linux-arm \(32-bit ARM\), where com"):
        package(_request(variants_dir(tmp_path / "v", neo_target="rasp3b"), tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("neo_target", "expected"),
    [
        ("jetson_nano", {"linux-aarch64-nvidia": "jetson_nano", "linux-aarch64": "cpu-int8"}),
        ("rk3399", {"linux-aarch64-mali": "rk3399", "linux-aarch64": "cpu-int8"}),
    ],
)
def test_neo_builds_fill_their_platform(tmp_path: Path, neo_target: str, expected: dict[str, str]) -> None:
    packaged = package(_request(variants_dir(tmp_path / "v", neo_target=neo_target), tmp_path / "out"))
    chosen = {artifact.platform.slot: artifact.variant.target for artifact in packaged.artifacts}
    assert expected.items() <= chosen.items()
    accelerated = [artifact.platform.accelerator != "cpu" for artifact in packaged.artifacts]
    assert accelerated == sorted(accelerated, reverse=True)  # accelerator manifests come first
