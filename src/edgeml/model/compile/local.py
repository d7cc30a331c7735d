"""Local compile (the offline default): per-target ONNX variants made with ONNX Runtime's own tools.

Targets: cpu-fp32 (the source as is), cpu-opt (offline graph optimisation), cpu-fp16 (float16
weights, float32 io) and cpu-int8 (static QDQ quantisation calibrated on given samples). The source and
every variant must load in ONNX Runtime and run one sample. litert-fp32 is a .tflite source as it is, or
an ONNX source written as .tflite (compile/litert_variant.py); a .tflite source has no other target. Every
variant is timed on this machine (compile/latency.py) for `package` to pick a runtime with. Held-out accuracy
is measured in the runtime the variant runs in: ONNX Runtime, or LiteRT (evaluate_litert.py). Every variant
is written to a staging folder beside `out_dir` and moved in only when all targets succeeded.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeml.errors import EdgemlError
from edgeml.model.compile.latency import Timed, measure_latencies
from edgeml.model.compile.litert_variant import make_litert_variant
from edgeml.model.compile.runcheck import check_runs
from edgeml.model.compile.transforms import convert_fp16, optimise_graph, quantise_int8
from edgeml.model.datasets import LabelledSet
from edgeml.model.evaluate import top1_accuracy
from edgeml.model.evaluate_litert import LitertAgreement, score_litert_variant
from edgeml.model.signature import ModelSignature, model_framework, read_signature
from edgeml.model.staging import staged_output
from edgeml.model.targets import LITERT_TARGET_NAMES, UnknownTarget, get_target

LOCAL_TARGETS = ("cpu-fp32", "cpu-opt", "cpu-fp16", "cpu-int8")
ACCEPTED_TARGETS = LOCAL_TARGETS + LITERT_TARGET_NAMES
QUANTISATION = {
    "cpu-fp32": "none",
    "cpu-opt": "none",
    "cpu-fp16": "fp16",
    "cpu-int8": "int8-qdq",
    "litert-fp32": "none",
}
CALIBRATION_BATCH = 32


class MissingCalibration(EdgemlError):
    """cpu-int8 was asked for without calibration samples."""


class CalibrationShapeMismatch(EdgemlError):
    """The calibration samples do not have the model's input shape (beyond the batch dimension)."""


@dataclass(frozen=True)
class LocalVariant:
    """One locally compiled variant: its target, file, quantisation and held-out accuracy if measured."""

    target: str
    path: Path
    quantisation: str  # "none" | "fp16" | "int8-qdq"
    accuracy_top1: float | None
    samples: int
    framework: str = "onnx"  # "onnx" | "tflite"
    input_shape: tuple[int, ...] | None = None  # when not the source's (a .tflite written from ONNX: NHWC)
    latency_ms: float | None = None  # median per run on this machine, timed beside the other variants


def variant_file_name(target: str) -> str:
    """File name of a target's variant inside the output directory."""
    return f"{target}.tflite" if target in LITERT_TARGET_NAMES else f"{target}.onnx"


def default_targets(source: Path, calibrated: bool) -> tuple[str, ...]:
    """Targets when none is given: litert-fp32 for a .tflite source, else cpu-opt (and cpu-int8 if
    there is calibration data)."""
    if model_framework(source) == "tflite":
        return LITERT_TARGET_NAMES
    return ("cpu-opt", "cpu-int8") if calibrated else ("cpu-opt",)


def _check_targets(targets: Sequence[str], source: Path) -> list[str]:
    unknown = [target for target in targets if target not in ACCEPTED_TARGETS]
    if unknown:
        raise UnknownTarget(
            f"unknown local target(s) {', '.join(repr(t) for t in unknown)};"
            f" known: {', '.join(ACCEPTED_TARGETS)}"
        )
    if not targets:
        raise UnknownTarget(f"no local target given; known: {', '.join(ACCEPTED_TARGETS)}")
    onnx_only = [target for target in targets if target not in LITERT_TARGET_NAMES]
    if model_framework(source) == "tflite" and onnx_only:
        raise UnknownTarget(
            f"{source}: a .tflite model is packaged as it is (-t {', '.join(LITERT_TARGET_NAMES)});"
            f" {onnx_only[0]} needs an ONNX source"
        )
    return list(dict.fromkeys(targets))


def _check_calibration(
    calibration: np.ndarray | None, signature: ModelSignature, fixed_batch: bool
) -> np.ndarray:
    minimum = signature.input.shape[0] if fixed_batch else 1
    if calibration is None or len(calibration) < minimum:
        raise MissingCalibration(
            f"target cpu-int8 needs calibration samples (at least {minimum}) for static INT8 quantisation"
        )
    expected = signature.input.shape[1:]
    if tuple(calibration.shape[1:]) != expected:
        raise CalibrationShapeMismatch(
            f"calibration samples have shape {list(calibration.shape)}; the model input"
            f" '{signature.input.name}' needs [N, {', '.join(str(dim) for dim in expected)}]"
        )
    return calibration.astype(np.float32, copy=False)


def _copy(source: Path, destination: Path) -> None:
    shutil.copyfile(source, destination)


def _has_dynamic_batch(source: Path) -> bool:
    import onnx

    first = onnx.load(str(source), load_external_data=False).graph.input[0]
    dims = first.type.tensor_type.shape.dim
    return bool(dims) and not dims[0].HasField("dim_value")


def compile_local(
    source: Path,
    out_dir: Path,
    *,
    targets: Sequence[str] = ("cpu-opt", "cpu-int8"),
    calibration: np.ndarray | None = None,
    holdout: LabelledSet | None = None,
    input_shape: tuple[int, ...] | None = None,
    int8_check: Callable[[Path, Path], None] | None = None,
    on_litert_agreement: Callable[[LitertAgreement], None] | None = None,
    unlabelled_holdout: np.ndarray | None = None,
) -> list[LocalVariant]:
    """Writes `out_dir/<target>.onnx` per target; returns the variants, with accuracy on `holdout` if given.

    Raises NotAnOnnxModel / DynamicInputShape / InputShapeMismatch (from the signature reader),
    UnknownTarget, MissingCalibration or CalibrationShapeMismatch before anything is written; on any
    failure `out_dir` is left exactly as it was. `int8_check(source, staged int8 file)` may refuse the
    cpu-int8 variant by raising (calibration.check_int8_loss), with the same all-or-nothing effect.
    A litert-fp32 variant is scored in LiteRT; written from ONNX, `on_litert_agreement` gets its top-1
    agreement with the source in ONNX Runtime on `holdout` (or on `unlabelled_holdout`: inputs alone).
    """
    wanted = _check_targets(targets, source)
    signature = read_signature(source, input_shape)
    if model_framework(source) == "onnx":
        check_runs(source, signature, str(source))
    fixed_batch = model_framework(source) == "tflite" or not _has_dynamic_batch(source)
    samples = _check_calibration(calibration, signature, fixed_batch) if "cpu-int8" in wanted else None
    batch = signature.input.shape[0] if fixed_batch else CALIBRATION_BATCH

    def int8(src: Path, dst: Path) -> None:
        assert samples is not None
        quantise_int8(src, dst, samples, signature.input.name, batch, fixed_batch=fixed_batch)

    makers: dict[str, Callable[[Path, Path], None]] = {
        "cpu-fp32": _copy,
        "cpu-opt": optimise_graph,
        "cpu-fp16": convert_fp16,
        "cpu-int8": int8,
    }
    produced: list[tuple[str, float | None]] = []
    timed: dict[str, Timed] = {}
    with staged_output(out_dir, merge=True) as stage:
        for target in wanted:
            staged = stage / variant_file_name(target)
            if target in LITERT_TARGET_NAMES:
                shape = make_litert_variant(source, staged, signature)
                timed[target] = Timed(staged, "tflite", shape, signature.input.dtype)
                litert_accuracy: float | None = None
                inputs = holdout.x if holdout is not None else unlabelled_holdout
                if inputs is not None:
                    labels = holdout.y if holdout is not None else None
                    litert_accuracy, agreement = score_litert_variant(target, staged, source, inputs, labels)
                    if agreement is not None and on_litert_agreement is not None:
                        on_litert_agreement(agreement)
                produced.append((target, litert_accuracy))
                continue
            makers[target](source, staged)
            # the variant must keep the source's signature, and run
            check_runs(staged, read_signature(staged, input_shape), f"{source}: variant {target}")
            if target == "cpu-int8" and int8_check is not None:
                int8_check(source, staged)
            accuracy = top1_accuracy(staged, holdout) if holdout is not None else None
            produced.append((target, accuracy))
            timed[target] = Timed(staged, "onnx", signature.input.shape, signature.input.dtype)
        latencies = measure_latencies(timed)
    samples_count = len(holdout) if holdout is not None else 0
    return [
        LocalVariant(
            target=target,
            path=out_dir / variant_file_name(target),
            quantisation=QUANTISATION[target],
            accuracy_top1=accuracy,
            samples=samples_count if accuracy is not None else 0,
            framework=get_target(target).framework,
            input_shape=timed[target].shape if timed[target].shape != signature.input.shape else None,
            latency_ms=latencies[target],
        )
        for target, accuracy in produced
    ]
