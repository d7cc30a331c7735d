"""Model variants: digits FP32 vs optimised vs INT8, EfficientNet-Lite0 FP32 vs INT8, on this CPU.

Every row is measured in the same run, with ONNX Runtime's CPU EP pinned to one intra-op thread, and
the variants' runs interleaved round by round so that noise on a shared machine hits all of them alike.
Digits: file size, held-out top-1 (360 samples), median latency at batch 1 and 32 over 200 runs each.
EfficientNet-Lite0 (exported once into build/models/, never committed): median latency at batch 1 over
100 runs, top-1 agreement of INT8 with FP32 on 12 sample images (calibrated on 32 other crops).
Targets: INT8 >= 1.5x FP32 speed on EfficientNet-Lite0; <= 1 point held-out accuracy loss on digits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from edgeml.model.compile.local import LocalVariant, compile_local
from edgeml.model.datasets import digits_split
from edgeml.model.evaluate import cpu_session
from edgeml.model.zoo.efficientnet import cached_efficientnet_lite0
from edgeml.model.zoo.images import calibration_images, imagenet_preprocess, sample_images

REPO = Path(__file__).resolve().parent.parent
DIGITS = REPO / "models" / "digits" / "model.onnx"
BUILD = REPO / "build"
DIGITS_RUNS = 200
EFFICIENTNET_RUNS = 100
WARMUP = 10
TARGET_SPEEDUP = 1.5
TARGET_ACCURACY_LOSS = 0.01


@dataclass(frozen=True)
class Row:
    """One variant's figures; latencies in milliseconds, None where not measured."""

    model: str
    variant: LocalVariant
    batch1_ms: float
    batch32_ms: float | None
    agreement: float | None


def interleaved_medians(sessions: Sequence[ort.InferenceSession], feed: np.ndarray, runs: int) -> list[float]:
    """Median wall time (ms) of `session.run` per session, the sessions taking turns every round."""
    name = sessions[0].get_inputs()[0].name
    for session in sessions:
        for _ in range(WARMUP):
            session.run(None, {name: feed})
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(runs):
        for index, session in enumerate(sessions):
            start = time.perf_counter()
            session.run(None, {name: feed})
            times[index].append(time.perf_counter() - start)
    return [float(np.median(series)) * 1000.0 for series in times]


def digits_rows(out_dir: Path) -> list[Row]:
    _, calibration, holdout = digits_split(seed=0)
    variants = compile_local(
        DIGITS,
        out_dir,
        targets=("cpu-fp32", "cpu-opt", "cpu-int8"),
        calibration=calibration.x,
        holdout=holdout,
        input_shape=(1, 1, 8, 8),
    )
    sessions = [cpu_session(variant.path, intra_op_threads=1) for variant in variants]
    batch1 = interleaved_medians(sessions, holdout.x[:1], DIGITS_RUNS)
    batch32 = interleaved_medians(sessions, holdout.x[:32], DIGITS_RUNS)
    return [
        Row("digits", variant, one, many, None)
        for variant, one, many in zip(variants, batch1, batch32, strict=True)
    ]


def efficientnet_rows(out_dir: Path) -> list[Row]:
    source = cached_efficientnet_lite0(BUILD / "models")
    calibration = np.concatenate([imagenet_preprocess(image) for image in calibration_images(32)])
    variants = compile_local(source, out_dir, targets=("cpu-fp32", "cpu-int8"), calibration=calibration)
    sessions = [cpu_session(variant.path, intra_op_threads=1) for variant in variants]
    images = [imagenet_preprocess(image) for image in sample_images()]
    top1 = [
        [int(np.argmax(session.run(None, {"input": image})[0])) for image in images] for session in sessions
    ]
    agreement = [float(np.mean(np.equal(top1[0], labels))) for labels in top1]
    batch1 = interleaved_medians(sessions, images[0], EFFICIENTNET_RUNS)
    return [
        Row("efficientnet-lite0", variant, one, None, agree)
        for variant, one, agree in zip(variants, batch1, agreement, strict=True)
    ]


def _cell(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: list[Row]) -> Table:
    result = Table(title=f"Model variants on this CPU (ONNX Runtime {ort.__version__}, 1 intra-op thread)")
    for column in (
        "model",
        "variant",
        "KiB",
        "held-out top-1",
        "ms batch 1",
        "ms batch 32",
        "speed vs fp32 b1",
        "top-1 = fp32's",
    ):
        result.add_column(column, justify="left" if column in ("model", "variant") else "right")
    baseline = {row.model: row.batch1_ms for row in rows if row.variant.target == "cpu-fp32"}
    for row in rows:
        result.add_row(
            row.model,
            row.variant.target,
            f"{row.variant.path.stat().st_size / 1024:.0f}",
            _cell(row.variant.accuracy_top1, ".4f"),
            f"{row.batch1_ms:.3f}",
            _cell(row.batch32_ms, ".3f"),
            f"{baseline[row.model] / row.batch1_ms:.2f}x",
            _cell(row.agreement, ".0%"),
        )
    return result


def verdict(rows: list[Row]) -> list[str]:
    """The two targets, each with the figures it was judged on."""
    by_key = {(row.model, row.variant.target): row for row in rows}
    fp32, int8 = by_key[("efficientnet-lite0", "cpu-fp32")], by_key[("efficientnet-lite0", "cpu-int8")]
    speedup = fp32.batch1_ms / int8.batch1_ms
    digits_fp32, digits_int8 = by_key[("digits", "cpu-fp32")], by_key[("digits", "cpu-int8")]
    loss = (digits_fp32.variant.accuracy_top1 or 0.0) - (digits_int8.variant.accuracy_top1 or 0.0)
    digits_speed = [
        digits_fp32.batch1_ms / digits_int8.batch1_ms,
        (digits_fp32.batch32_ms or 0.0) / (digits_int8.batch32_ms or 1.0),
    ]
    met = speedup >= TARGET_SPEEDUP and loss <= TARGET_ACCURACY_LOSS
    return [
        f"EfficientNet-Lite0 INT8/FP32 speed: {speedup:.2f}x (target >= {TARGET_SPEEDUP}x)",
        f"digits INT8/FP32 speed: {digits_speed[0]:.2f}x at batch 1, {digits_speed[1]:.2f}x at batch 32",
        f"digits INT8 accuracy loss: {loss * 100:+.2f} points (target <= {TARGET_ACCURACY_LOSS * 100:.0f})",
        f"target {'MET' if met else 'NOT MET'} on this CPU",
    ]


def main() -> None:
    console = Console(width=130)
    out = BUILD / "bench-model"
    with console.status("digits: compiling and timing variants"):
        rows = digits_rows(out / "digits")
    with console.status("EfficientNet-Lite0: exporting (cached), quantising and timing"):
        rows += efficientnet_rows(out / "efficientnet-lite0")
    console.print(table(rows))
    for line in verdict(rows):
        console.print(line)


if __name__ == "__main__":
    main()
