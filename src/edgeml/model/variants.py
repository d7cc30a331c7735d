"""The variants directory: what `edgeml model compile` writes and `edgeml model package` reads.

`<dir>/variants.json` records the source model (sha256, input signature) and one entry per compiled
variant (target, framework, path relative to the directory, quantisation, held-out accuracy, and the
sha256 of each of its files, which `package` checks before it zips them). The source's model card is
copied beside it as `<dir>/model-card.json`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeml.errors import EdgemlError

VARIANTS_FILE = "variants.json"
VARIANTS_SCHEMA = "edgeml.variants/1"


class BadVariantsDir(EdgemlError):
    """The directory given to `package` holds no usable variants.json or a variant's files are gone."""


@dataclass(frozen=True)
class SourceModel:
    """The model every variant was made from."""

    file_name: str
    sha256: str
    framework: str  # "onnx" | "tflite" | "pytorch"
    input_name: str
    input_shape: tuple[int, ...]
    input_dtype: str
    output_name: str


@dataclass(frozen=True)
class Variant:
    """One compiled variant. `path` is relative to the variants dir: a file (ONNX) or a directory (DLR)."""

    target: str
    framework: str  # "onnx" | "dlr" | "tflite"
    path: str
    quantisation: str  # "none" | "fp16" | "int8-qdq" | "neo"
    accuracy_top1: float | None
    samples: int
    # sha256 of every file of the variant, by path relative to the variants dir (as compile wrote them)
    files: dict[str, str] = field(default_factory=dict, hash=False)
    input_shape: tuple[int, ...] | None = None  # None: the source's (a .tflite written from ONNX is NHWC)
    latency_ms: float | None = None  # median ms per run, timed by compile beside its other variants
    measured_on: str | None = None  # the architecture latency_ms was measured on (amd64, aarch64)


@dataclass(frozen=True)
class VariantSet:
    """The contents of variants.json."""

    source: SourceModel
    variants: tuple[Variant, ...]

    def write(self, directory: Path) -> Path:
        payload = {
            "schema": VARIANTS_SCHEMA,
            "source": asdict(self.source),
            "variants": [asdict(variant) for variant in self.variants],
        }
        path = directory / VARIANTS_FILE
        path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source(raw: dict[str, Any]) -> SourceModel:
    return SourceModel(
        file_name=str(raw["file_name"]),
        sha256=str(raw["sha256"]),
        framework=str(raw["framework"]),
        input_name=str(raw["input_name"]),
        input_shape=tuple(int(dim) for dim in raw["input_shape"]),
        input_dtype=str(raw["input_dtype"]),
        output_name=str(raw["output_name"]),
    )


def _variant(raw: dict[str, Any]) -> Variant:
    accuracy = raw.get("accuracy_top1")
    shape, latency = raw.get("input_shape"), raw.get("latency_ms")
    return Variant(
        target=str(raw["target"]),
        framework=str(raw["framework"]),
        path=str(raw["path"]),
        quantisation=str(raw["quantisation"]),
        accuracy_top1=None if accuracy is None else float(accuracy),
        samples=int(raw.get("samples", 0)),
        files={str(name): str(digest) for name, digest in dict(raw.get("files", {})).items()},
        input_shape=None if shape is None else tuple(int(dim) for dim in shape),
        latency_ms=None if latency is None else float(latency),
        measured_on=None if raw.get("measured_on") is None else str(raw["measured_on"]),
    )


def read_variants(directory: Path) -> VariantSet:
    """Reads `<directory>/variants.json` and checks every variant's path exists inside the directory."""
    path = directory / VARIANTS_FILE
    if not path.is_file():
        raise BadVariantsDir(f"{directory}: no {VARIANTS_FILE} (make one with `edgeml model compile`)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("schema") != VARIANTS_SCHEMA:
            raise BadVariantsDir(f"{path}: schema is {raw.get('schema')!r}, expected {VARIANTS_SCHEMA!r}")
        variant_set = VariantSet(_source(raw["source"]), tuple(_variant(item) for item in raw["variants"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise BadVariantsDir(f"{path}: malformed ({type(error).__name__}: {error})") from error
    if not variant_set.variants:
        raise BadVariantsDir(f"{path}: lists no variants")
    root = directory.resolve()
    for variant in variant_set.variants:
        location = (directory / variant.path).resolve()
        if not location.is_relative_to(root) or not location.exists():
            raise BadVariantsDir(f"{path}: variant {variant.target} path '{variant.path}' is missing")
    return variant_set


def variant_digests(directory: Path, variant_path: str) -> dict[str, str]:
    """sha256 of each file of the variant at `directory / variant_path` (a file, or a directory's files)."""
    location = directory / variant_path
    if location.is_file():
        return {Path(variant_path).as_posix(): sha256_file(location)}
    files = sorted(path for path in location.rglob("*") if path.is_file())
    return {path.relative_to(directory).as_posix(): sha256_file(path) for path in files}


def with_digests(directory: Path, variant: Variant) -> Variant:
    """`variant` with the sha256 of its files as they are now in `directory` (called by compile)."""
    return replace(variant, files=variant_digests(directory, variant.path))


def verify_digests(directory: Path, variant: Variant) -> None:
    """Raises BadVariantsDir unless the variant's files are exactly those compile recorded, byte for byte."""
    where = f"{directory / VARIANTS_FILE}: variant {variant.target}"
    if not variant.files:
        raise BadVariantsDir(f"{where} records no sha256 of its files (older edgeml?); compile it again")
    found = variant_digests(directory, variant.path)
    changed = sorted(name for name in variant.files if found.get(name) != variant.files[name])
    if changed:
        state = "missing" if changed[0] not in found else "changed since compile (sha256 differs)"
        raise BadVariantsDir(f"{where}: {changed[0]} {state}; compile it again")
    added = sorted(set(found) - set(variant.files))
    if added:
        raise BadVariantsDir(f"{where}: {added[0]} was not written by compile; remove it or compile again")


def merge_into_existing(directory: Path, new: VariantSet) -> VariantSet:
    """`new` plus the variants already recorded in `directory` for the same source (same sha256).

    A new variant replaces an old one of the same target; a different source replaces the whole set.
    """
    if not (directory / VARIANTS_FILE).is_file():
        return new
    try:
        old = read_variants(directory)
    except BadVariantsDir:
        return new
    if old.source.sha256 != new.source.sha256:
        return new
    replaced = {variant.target for variant in new.variants}
    kept = tuple(variant for variant in old.variants if variant.target not in replaced)
    return VariantSet(new.source, kept + new.variants)
