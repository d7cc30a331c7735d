"""Runs the local (ONNX Runtime) compiler into a staging directory and records its variants."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeml.errors import EdgemlError
from edgeml.model.compile.local import compile_local
from edgeml.model.compile.output import card_for, finish_stage, source_model
from edgeml.model.datasets import LabelledSet, digits_split
from edgeml.model.signature import read_signature
from edgeml.model.staging import check_output_dir, staged_output
from edgeml.model.targets import get_target
from edgeml.model.variants import Variant, VariantSet

DATASETS = ("none", "digits")


class UnknownDataset(EdgemlError):
    """--dataset names no data set this tool can load."""


@dataclass(frozen=True)
class LocalRequest:
    """What `edgeml model compile --local` was asked to do."""

    source: Path
    targets: tuple[str, ...]
    out_dir: Path
    input_shape: tuple[int, ...] | None = None
    dataset: str = "none"  # "digits": calibrate and measure on scikit-learn digits' held-out split
    card: Path | None = None


def _datasets(name: str) -> tuple[np.ndarray | None, LabelledSet | None]:
    """(calibration inputs, labelled holdout set) for --dataset, or (None, None)."""
    if name == "none":
        return None, None
    if name == "digits":
        _train, calibration, holdout = digits_split(seed=0)
        return calibration.x, holdout
    raise UnknownDataset(f"--dataset '{name}': expected one of {', '.join(DATASETS)}")


def _relative(path: Path, root: Path) -> str:
    resolved, base = path.resolve(), root.resolve()
    if not resolved.is_relative_to(base):
        raise EdgemlError(f"local compile wrote {path} outside its output directory")
    return resolved.relative_to(base).as_posix()


def compile_local_variants(request: LocalRequest) -> VariantSet:
    """Compiles every local target (all or nothing) and writes variants.json into `out_dir`."""
    for name in request.targets:
        get_target(name, "local")
    check_output_dir(request.out_dir)
    signature = read_signature(request.source, request.input_shape)
    card = card_for(request.source, request.card)
    calibration, holdout = _datasets(request.dataset)
    with staged_output(request.out_dir, merge=False) as stage:
        produced = compile_local(
            request.source,
            stage,
            targets=request.targets,
            calibration=calibration,
            holdout=holdout,
            input_shape=request.input_shape,
        )
        variants = [
            Variant(
                target=item.target,
                framework="onnx",
                path=_relative(item.path, stage),
                quantisation=item.quantisation,
                accuracy_top1=item.accuracy_top1,
                samples=item.samples,
            )
            for item in produced
        ]
        return finish_stage(stage, request.out_dir, source_model(request.source, signature), variants, card)
