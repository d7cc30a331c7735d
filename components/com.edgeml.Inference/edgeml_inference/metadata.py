"""Reads metadata.json (docs/model-metadata.md), finds a model directory and verifies its files' sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeml_inference.exceptions import ChecksumMismatch, MetadataInvalid

METADATA_FILE = "metadata.json"
# The metadata.json schema this reader was built for (docs/model-metadata.md). The cloud side writes the
# same string (edgeml.model.metadata.METADATA_SCHEMA; tests/unit/test_rules_per_side.py checks they agree).
METADATA_SCHEMA = "edgeml.model-metadata/1"


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input: x = (pixel * scale - mean[c]) / std[c]."""

    color: str = "L"
    resize: tuple[int, int] | None = None  # (height, width)
    resample: str = "bilinear"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NCHW"


@dataclass(frozen=True)
class Baseline:
    """Training-time distributions that drift (PSI) is measured against."""

    class_frequencies: tuple[float, ...] = ()
    confidence_bins: tuple[float, ...] = ()
    confidence_frequencies: tuple[float, ...] = ()


@dataclass(frozen=True)
class ModelMetadata:
    """The fields of metadata.json the device uses."""

    name: str
    version: str
    framework: str
    model_file: str
    input_name: str
    input_shape: tuple[int | str, ...]
    input_dtype: str
    output_name: str
    output_kind: str
    labels: tuple[str, ...]
    preprocessing: Preprocessing
    softmax: bool
    top_k: int
    files: dict[str, str]
    baseline: Baseline = field(default_factory=Baseline)
    target: str = ""
    source_sha256: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        schema = data.get("schema")
        if schema != METADATA_SCHEMA:
            found = "no schema" if schema is None else f"schema {schema!r}"
            raise MetadataInvalid(
                f"metadata.json has {found}; this app reads {METADATA_SCHEMA!r} (package the model with "
                "an edgeml that writes it, or deploy an app built for that schema)"
            )
        try:
            model_input, output = data["input"], data["output"]
            pre = data.get("preprocessing") or {}
            post = data.get("postprocessing") or {}
            base = data.get("baseline") or {}
            resize = pre.get("resize")
            return cls(
                name=str(data["name"]),
                version=str(data.get("version", "0.0.0")),
                framework=str(data.get("framework", "onnx")),
                model_file=str(data["model_file"]),
                input_name=str(model_input["name"]),
                input_shape=tuple(dim if isinstance(dim, int) else str(dim) for dim in model_input["shape"]),
                input_dtype=str(model_input.get("dtype", "float32")),
                output_name=str(output.get("name", "")),
                output_kind=str(output.get("kind", "logits")),
                labels=tuple(str(label) for label in data.get("labels", [])),
                preprocessing=Preprocessing(
                    color=str(pre.get("color", "L")),
                    resize=(int(resize[0]), int(resize[1])) if resize else None,
                    resample=str(pre.get("resample", "bilinear")),
                    scale=float(pre.get("scale", 1.0 / 255.0)),
                    mean=tuple(float(v) for v in pre.get("mean", [0.0])),
                    std=tuple(float(v) for v in pre.get("std", [1.0])),
                    layout=str(pre.get("layout", model_input.get("layout", "NCHW"))),
                ),
                softmax=bool(post.get("softmax", output.get("kind", "logits") == "logits")),
                top_k=int(post.get("top_k", 1)),
                files={str(k): str(v) for k, v in (data.get("files") or {}).items()},
                baseline=Baseline(
                    class_frequencies=tuple(float(v) for v in base.get("class_frequencies", [])),
                    confidence_bins=tuple(float(v) for v in base.get("confidence_bins", [])),
                    confidence_frequencies=tuple(float(v) for v in base.get("confidence_frequencies", [])),
                ),
                target=str(data.get("target", "")),
                source_sha256=str(data.get("source_sha256", "")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise MetadataInvalid(f"metadata.json lacks or mistypes {error}") from error

    @classmethod
    def load(cls, directory: Path) -> ModelMetadata:
        path = directory / METADATA_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise MetadataInvalid(f"cannot read {path}: {error}") from error
        if not isinstance(data, dict):
            raise MetadataInvalid(f"{path} is not a JSON object")
        return cls.from_dict(data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_files(directory: Path, metadata: ModelMetadata) -> None:
    """Checks every file listed in `files`; raises ChecksumMismatch on a missing file or a wrong digest."""
    if not metadata.files:
        raise ChecksumMismatch(f"{directory / METADATA_FILE} lists no files to verify")
    for name, expected in sorted(metadata.files.items()):
        path = directory / name
        if not path.is_file():
            raise ChecksumMismatch(f"{name} is listed in metadata.json but missing from {directory}")
        actual = sha256_file(path)
        if actual != expected.lower():
            raise ChecksumMismatch(f"{name}: sha256 {actual} != {expected} in metadata.json")


def _version_key(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for part in version.split("-")[0].split("."):
        parts.append(int(part) if part.isdigit() else -1)
    return tuple(parts)


def resolve_model_directory(root: Path) -> Path:
    """The folder holding metadata.json: `root` itself, or the newest version found up to two levels down.

    Accepts a variant folder (`.../1.0.0/linux-amd64`), a version folder, or the model component's
    artifact root holding one folder per version (the newest metadata `version` wins).
    """
    if (root / METADATA_FILE).is_file():
        return root
    candidates = sorted(root.glob(f"*/{METADATA_FILE}")) + sorted(root.glob(f"*/*/{METADATA_FILE}"))
    if not candidates:
        raise MetadataInvalid(f"no {METADATA_FILE} in {root} or the two levels below it")

    def version_of(path: Path) -> tuple[int, ...]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return _version_key(str(data.get("version", "0")))
        except (OSError, ValueError, AttributeError):
            return (-1,)

    return max(candidates, key=lambda path: (version_of(path), str(path))).parent
