"""Packages compiled variants into one Greengrass model component version.

Output (the gdk `greengrass-build/` layout, so `gdk`/`edgeml publish` can take it as is):
    <out>/recipes/com.edgeml.model.<Name>-<version>.yaml
    <out>/artifacts/com.edgeml.model.<Name>/<version>/<platform-slot>.zip
Each zip holds the variant's model file(s) and metadata.json; zips are byte-identical for identical
inputs (sorted entries, 1980-01-01 timestamps, mode 0644, canonical JSON).
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeml.awsnames import check_bucket_name
from edgeml.errors import EdgemlError
from edgeml.model.card import CARD_FILE, ModelCard, load_card
from edgeml.model.metadata import METADATA_FILE, ModelMetadata
from edgeml.model.recipe import (
    NEXT_PATCH,
    ArtifactRef,
    ModelRecipe,
    component_name,
    existing_versions,
    recipe_version,
    resolve_version,
)
from edgeml.model.runtime_pick import pick_runtime
from edgeml.model.staging import check_output_dir, staged_output
from edgeml.model.targets import DEFAULT_PLATFORMS, LITERT_TARGET_NAMES, Platform, get_target
from edgeml.model.variants import SourceModel, Variant, VariantSet, read_variants, sha256_file, verify_digests

ONNX_MODEL_FILE = "model.onnx"
TFLITE_MODEL_FILE = "model.tflite"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_MODE = 0o100644
# Portable ONNX variants, best first, for CPU manifests and for GPU (NVIDIA) manifests. INT8 QDQ is left
# out of GPU manifests by default: it is calibrated for CPU, and ONNX Runtime runs INT8 on NVIDIA GPUs
# through TensorRT rather than the CUDA provider (override with --assign).
CPU_PREFERENCE = ("cpu-int8", "cpu-opt", "cpu-fp32", "cpu-fp16")
GPU_PREFERENCE = ("cpu-fp16", "cpu-opt", "cpu-fp32")


class PackagingError(EdgemlError):
    """The variants cannot be mapped onto platform manifests as asked."""


@dataclass(frozen=True)
class PackageRequest:
    """What `edgeml model package` was asked to do."""

    variants_dir: Path
    name: str
    version: str  # semantic version or NEXT_PATCH
    bucket: str
    out_dir: Path
    card_path: Path | None = None
    key_prefix: str = ""
    assignments: dict[str, str] = field(default_factory=dict)  # platform slot -> variant target
    recipe_file: Path | None = None  # also write the recipe here; NEXT_PATCH bumps its version


@dataclass(frozen=True)
class PackagedArtifact:
    """One platform manifest's zip."""

    platform: Platform
    variant: Variant
    zip_path: Path
    sha256: str
    metadata: ModelMetadata


@dataclass(frozen=True)
class PackagedComponent:
    """The component version written to the output directory."""

    component: str
    version: str
    recipe: ModelRecipe
    recipe_path: Path
    artifacts: tuple[PackagedArtifact, ...]


def _platforms_for(variant_set: VariantSet) -> list[Platform]:
    platforms = list(DEFAULT_PLATFORMS)
    for variant in variant_set.variants:
        platform = get_target(variant.target).platform
        if platform is not None and not platform.has_runtime:
            raise PackagingError(
                f"variant {variant.target} runs on {platform.slot} (32-bit ARM), where com.edgeml.Runtime "
                "cannot install (no armv7l wheels of onnxruntime, numpy, Pillow or awscrt on PyPI); "
                "compile for a 64-bit OS instead (e.g. -t rasp4b)"
            )
        if platform is not None and platform not in platforms:
            platforms.append(platform)
    # Accelerator manifests first: the nucleus takes the first manifest whose platform matches.
    return sorted(platforms, key=lambda item: (item.accelerator == "cpu", platforms.index(item)))


def auto_choice(
    platform: Platform, variants: tuple[Variant, ...]
) -> tuple[Variant | None, dict[str, Any] | None]:
    """The variant a manifest gets without --assign, and the runtime_choice record when ONNX Runtime and
    LiteRT (CPU manifests only: LiteRT runs XNNPACK on the CPU) were both candidates."""
    for variant in variants:
        if get_target(variant.target).platform == platform:
            return variant, None
    preference = CPU_PREFERENCE if platform.accelerator == "cpu" else GPU_PREFERENCE
    if platform.accelerator not in ("cpu", "nvidia") or not platform.runs_onnx:
        return None, None
    portable = {item.target: item for item in variants if get_target(item.target).platform is None}
    onnx = next((portable[target] for target in preference if target in portable), None)
    litert = None
    if platform.accelerator == "cpu" and platform.runs_litert:
        litert = next((portable[target] for target in LITERT_TARGET_NAMES if target in portable), None)
    return pick_runtime(platform, onnx, litert)


def assign_variants(variant_set: VariantSet, assignments: dict[str, str]) -> list[tuple[Platform, Variant]]:
    """Which variant each platform manifest carries: explicit --assign first, else the best fit."""
    platforms = _platforms_for(variant_set)
    by_slot = {platform.slot: platform for platform in platforms}
    by_target = {variant.target: variant for variant in variant_set.variants}
    for slot, target in assignments.items():
        if slot not in by_slot:
            raise PackagingError(f"--assign {slot}={target}: unknown platform; known: {', '.join(by_slot)}")
        if target not in by_target:
            raise PackagingError(f"--assign {slot}={target}: no such variant; have: {', '.join(by_target)}")
        fixed = get_target(target).platform
        if fixed is not None and fixed != by_slot[slot]:
            raise PackagingError(f"--assign {slot}={target}: {target} runs on {fixed.slot}, not {slot}")
        if get_target(target).framework == "tflite" and not by_slot[slot].runs_litert:
            raise PackagingError(
                f"--assign {slot}={target}: {slot} has no LiteRT (ai-edge-litert has no wheels there)"
            )
        if fixed is None and not by_slot[slot].runs_onnx:
            raise PackagingError(
                f"--assign {slot}={target}: {slot} has no ONNX Runtime (com.edgeml.Runtime installs DLR only "
                "there); compile a Neo variant for it (e.g. -t rasp3b)"
            )
    chosen = []
    for platform in platforms:
        assigned = assignments.get(platform.slot)
        variant = by_target[assigned] if assigned else auto_choice(platform, variant_set.variants)[0]
        if variant is not None:
            chosen.append((platform, variant))
    if not chosen:
        raise PackagingError("no variant fits any platform manifest; use --assign SLOT=TARGET")
    return chosen


def _variant_files(variants_dir: Path, variant: Variant) -> tuple[str, dict[str, Path]]:
    """(model_file for metadata.json, {name in zip: file on disk})."""
    location = variants_dir / variant.path
    if location.is_file():
        name = TFLITE_MODEL_FILE if variant.framework == "tflite" else ONNX_MODEL_FILE
        return name, {name: location}
    files = {path.relative_to(location).as_posix(): path for path in location.rglob("*") if path.is_file()}
    if METADATA_FILE in files:
        raise PackagingError(f"{location}: holds its own {METADATA_FILE}; remove it")
    return ".", files


def _write_zip(path: Path, entries: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = ZIP_MODE << 16
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=9)


def _version(request: PackageRequest, component: str) -> str:
    known = existing_versions(request.out_dir / "recipes", component)
    if request.recipe_file is not None and request.recipe_file.is_file():
        known.append(recipe_version(request.recipe_file))
    return resolve_version(request.version, known)


def _build_artifact(
    request: PackageRequest,
    stage_dir: Path,
    version: str,
    platform: Platform,
    variant: Variant,
    source: SourceModel,
    card: ModelCard,
    runtime_choice: dict[str, Any] | None,
) -> PackagedArtifact:
    model_file, files = _variant_files(request.variants_dir, variant)
    entries = {name: path.read_bytes() for name, path in files.items()}
    metadata = ModelMetadata(
        name=request.name.lower(),
        version=version,
        variant=variant,
        platform=platform,
        model_file=model_file,
        source=source,
        card=card,
        files={name: hashlib.sha256(data).hexdigest() for name, data in entries.items()},
        runtime_choice=runtime_choice,
    )
    entries[METADATA_FILE] = metadata.to_json_bytes()
    zip_path = stage_dir / f"{platform.slot}.zip"
    _write_zip(zip_path, entries)
    return PackagedArtifact(platform, variant, zip_path, sha256_file(zip_path), metadata)


def check_request(request: PackageRequest) -> str:
    """Checks what can be checked without reading the variants; returns the component name."""
    component = component_name(request.name)
    check_bucket_name(request.bucket)
    check_output_dir(request.out_dir)
    if request.version != NEXT_PATCH:
        resolve_version(request.version, [])
    if request.recipe_file is not None:
        if request.recipe_file.is_dir():
            raise PackagingError(f"--recipe-file {request.recipe_file}: is a directory")
        check_output_dir(request.recipe_file.parent, "--recipe-file's folder")
        if request.recipe_file.is_file():
            recipe_version(request.recipe_file)  # read for NEXT_PATCH: a broken one is refused now
    return component


def package(
    request: PackageRequest, before_commit: Callable[[PackagedComponent], None] | None = None
) -> PackagedComponent:
    """Writes the component version into `request.out_dir` (all or nothing) and returns what it wrote.

    `before_commit` (e.g. Model Registry registration) runs on the staged result before anything is moved
    into `out_dir`; if it raises, `out_dir` and `recipe_file` are left as they were.
    """
    component = check_request(request)
    variant_set = read_variants(request.variants_dir)
    card = load_card(request.card_path or request.variants_dir / CARD_FILE)
    chosen = assign_variants(variant_set, request.assignments)
    for variant in {variant.target: variant for _slot, variant in chosen}.values():
        verify_digests(request.variants_dir, variant)  # a variant overwritten since compile is not shipped
    version = _version(request, component)
    prefix = request.key_prefix.strip("/")
    key_base = f"{prefix}/{component}/{version}" if prefix else f"{component}/{version}"
    artifact_rel = Path("artifacts", component, version)
    recipe_rel = Path("recipes", f"{component}-{version}.yaml")
    with staged_output(request.out_dir, merge=True) as stage:
        (stage / artifact_rel).mkdir(parents=True)
        (stage / recipe_rel.parent).mkdir(parents=True)
        built = [
            _build_artifact(
                request,
                stage / artifact_rel,
                version,
                slot,
                variant,
                variant_set.source,
                card,
                None if slot.slot in request.assignments else auto_choice(slot, variant_set.variants)[1],
            )
            for slot, variant in chosen
        ]
        refs = tuple(
            ArtifactRef(
                item.platform,
                f"s3://{request.bucket}/{key_base}/{item.zip_path.name}",
                base64.b64encode(bytes.fromhex(item.sha256)).decode("ascii"),
            )
            for item in built
        )
        targets = ", ".join(sorted({item.variant.target for item in built}))
        recipe = ModelRecipe(
            component=component,
            version=version,
            description=(
                f"Model {request.name} ({targets}) from source sha256 {variant_set.source.sha256[:12]};"
                " one artifact per platform, each with metadata.json."
            ),
            artifacts=refs,
        )
        (stage / recipe_rel).write_text(recipe.to_yaml(), encoding="utf-8")
        staged = PackagedComponent(component, version, recipe, stage / recipe_rel, tuple(built))
        if before_commit is not None:
            before_commit(staged)
    if request.recipe_file is not None:
        _replace_text(request.recipe_file, recipe.to_yaml())
    out = request.out_dir
    artifacts = tuple(replace(item, zip_path=out / artifact_rel / item.zip_path.name) for item in built)
    return PackagedComponent(component, version, recipe, out / recipe_rel, artifacts)


def _replace_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
