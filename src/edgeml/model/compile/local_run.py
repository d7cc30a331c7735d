"""Runs the local (ONNX Runtime) compiler into a staging directory and records its variants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeml.errors import EdgemlError
from edgeml.model.card import load_card
from edgeml.model.compile.calibration import (
    HOLDOUT_FRACTION,
    LOSS_ACTIONS,
    MAX_INT8_LOSS,
    CalibrationDataError,
    Int8Report,
    check_int8_loss,
    int8_report,
    load_calibration,
)
from edgeml.model.compile.latency import this_architecture
from edgeml.model.compile.local import compile_local
from edgeml.model.compile.output import card_for, finish_stage, source_model
from edgeml.model.datasets import LabelledSet, digits_split
from edgeml.model.evaluate_litert import LitertAgreement
from edgeml.model.signature import model_framework, read_signature
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
    calibration: Path | None = None  # the user's images or tensors (compile/calibration.py)
    holdout_fraction: float = HOLDOUT_FRACTION
    max_int8_loss: float = MAX_INT8_LOSS
    int8_loss: str = "refuse"  # or "warn"


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


def compile_local_variants(
    request: LocalRequest,
    on_int8_report: Callable[[Int8Report], None] | None = None,
    on_litert_agreement: Callable[[LitertAgreement], None] | None = None,
) -> VariantSet:
    """Compiles every local target (all or nothing) and writes variants.json into `out_dir`.

    With `request.calibration`, cpu-int8 is calibrated on the user's data and checked against the FP32
    source on its held-out split; `on_int8_report` gets the comparison of an accepted variant. With a
    held-out set (labelled or not), `on_litert_agreement` gets a litert-fp32 variant written from ONNX
    against its source."""
    for name in request.targets:
        get_target(name, "local")
    check_output_dir(request.out_dir)
    signature = read_signature(request.source, request.input_shape)
    card = card_for(request.source, request.card)
    calibration, holdout = _datasets(request.dataset)
    unlabelled: np.ndarray | None = None  # held-out inputs without labels: agreement only
    int8_check: Callable[[Path, Path], None] | None = None
    if request.calibration is not None:
        if request.dataset != "none":
            raise CalibrationDataError("give --calibration or --dataset, not both")
        if request.int8_loss not in LOSS_ACTIONS:
            raise CalibrationDataError(f"--int8-loss {request.int8_loss!r}: expected refuse or warn")
        model_card = load_card(card) if card is not None else None
        data = load_calibration(
            request.calibration,
            model_card.preprocessing if model_card is not None else None,
            signature.input.shape,
            model_card.labels if model_card is not None else (),
            request.holdout_fraction,
        )
        calibration = data.calibration
        if data.holdout_labels is not None:
            holdout = LabelledSet(
                data.holdout, data.holdout_labels, f"calibration holdout: {data.description}"
            )
        else:
            unlabelled = data.holdout

        def int8_check(fp32: Path, int8: Path) -> None:
            report = int8_report(fp32, int8, data, request.max_int8_loss)
            check_int8_loss(report, request.int8_loss)
            if on_int8_report is not None:
                on_int8_report(report)

    with staged_output(request.out_dir, merge=False) as stage:
        produced = compile_local(
            request.source,
            stage,
            targets=request.targets,
            calibration=calibration,
            holdout=holdout,
            input_shape=request.input_shape,
            int8_check=int8_check,
            on_litert_agreement=on_litert_agreement,
            unlabelled_holdout=unlabelled,
        )
        variants = [
            Variant(
                target=item.target,
                framework=item.framework,
                path=_relative(item.path, stage),
                quantisation=item.quantisation,
                accuracy_top1=item.accuracy_top1,
                samples=item.samples,
                input_shape=item.input_shape,
                latency_ms=item.latency_ms,
                measured_on=this_architecture() if item.latency_ms is not None else None,
            )
            for item in produced
        ]
        source = source_model(request.source, signature, model_framework(request.source))
        return finish_stage(stage, request.out_dir, source, variants, card)
