"""INT8 calibration data from a user's own inputs, and the INT8-vs-FP32 check on a held-out split.

`--calibration PATH` is a folder of images (files directly in it: unlabelled; or one sub-folder per label,
named as in the model card's `labels`: labelled), a `.npy` of model-ready tensors (N x input shape without
the batch) or a `.npz` with `x` (tensors) and `y` (class indices). Images go through the model's own
pre-processing, the model card's `preprocessing` (docs/model-metadata.md), computed as the device app does
(`edgeml_inference.preprocess`: same decode shortcuts, same normalisation; tests/unit check that both sides
give the same tensor). A seeded shuffle holds out `holdout_fraction` of the samples: the rest calibrates, the
held-out part compares the INT8 variant's top-1 with the FP32 source's (agreement, and accuracy when
labels are given). A disagreement above `max_loss` refuses the variant (nothing is written) or, with
`loss_action="warn"`, is reported as a warning.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader
from PIL import Image

from edgeml.errors import EdgemlError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
HOLDOUT_FRACTION = 0.2
MAX_INT8_LOSS = 0.02  # share of held-out samples whose INT8 top-1 may differ from FP32's
LOSS_ACTIONS = ("refuse", "warn")
MAX_IMAGE_PIXELS = 50_000_000
REDUCING_GAP = 3.0  # as the device app (edgeml_inference.preprocess)
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


class CalibrationDataError(EdgemlError):
    """--calibration names no usable data (missing, empty, undecodable, wrong shape, unknown label)."""


class Int8LossTooHigh(EdgemlError):
    """The INT8 variant disagrees with the FP32 source on more held-out samples than allowed."""


class ArrayCalibrationReader(CalibrationDataReader):  # type: ignore[misc]  # untyped base class
    """Yields `{input_name: rows}` batches of `samples` (as `dtype`, float32 by default), `batch` rows at a
    time. With `fixed_batch` (a model whose batch dimension is a constant) a short last batch is dropped.
    """

    def __init__(
        self,
        input_name: str,
        samples: np.ndarray,
        batch: int,
        *,
        fixed_batch: bool,
        dtype: type[np.generic] = np.float32,
    ) -> None:
        self._input_name = input_name
        self._samples = np.ascontiguousarray(samples, dtype=dtype)
        self._batch = max(1, batch)
        self._fixed_batch = fixed_batch
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        rows = self._samples[self._next : self._next + self._batch]
        self._next += self._batch
        if rows.shape[0] == 0 or (self._fixed_batch and rows.shape[0] < self._batch):
            return None
        return {self._input_name: rows}

    def rewind(self) -> None:
        self._next = 0


def preprocess_image(data: bytes, spec: dict[str, Any]) -> np.ndarray:
    """One image file's bytes -> the model input sample (no batch axis), per the card's `preprocessing`:
    decode (a JPEG at >= 2x the target at reduced scale), convert to `color`, resize to `resize` (height,
    width) with `resample`, then (pixel * scale - mean[c]) / std[c] in `layout`."""
    color = str(spec.get("color", "L"))
    size = spec.get("resize")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        opened = Image.open(io.BytesIO(data))
        if opened.width * opened.height > MAX_IMAGE_PIXELS:
            raise CalibrationDataError(f"{opened.width}x{opened.height} pixels is over the image limit")
        if size is not None and opened.format == "JPEG":
            height, width = int(size[0]), int(size[1])
            if opened.width >= 2 * width and opened.height >= 2 * height:
                opened.draft(color if color in ("RGB", "L") else None, (width, height))
        opened.load()
    image = opened.convert(color)
    if size is not None:
        height, width = int(size[0]), int(size[1])
        if image.size != (width, height):
            resample = _RESAMPLE.get(str(spec.get("resample", "bilinear")), Image.Resampling.BILINEAR)
            image = image.resize((width, height), resample, reducing_gap=REDUCING_GAP)
    pixels = np.asarray(image).astype(np.float32)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    mean = np.asarray(spec.get("mean", [0.0]), dtype=np.float32)
    std = np.asarray(spec.get("std", [1.0]), dtype=np.float32)
    x = (pixels * np.float32(spec.get("scale", 1.0 / 255.0)) - mean) / std
    if str(spec.get("layout", "NCHW")).upper() == "NCHW":
        x = np.transpose(x, (2, 0, 1))
    return np.ascontiguousarray(x, dtype=np.float32)


@dataclass(frozen=True)
class CalibrationSet:
    """Samples to calibrate on and the held-out part the INT8 check runs on."""

    calibration: np.ndarray
    holdout: np.ndarray
    holdout_labels: np.ndarray | None
    description: str  # e.g. "120 images from photos/ (labelled)"


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )


def _read_folder(
    folder: Path, spec: dict[str, Any], labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray | None, str]:
    classes = sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))
    files: list[tuple[Path, int | None]] = [(path, None) for path in _image_files(folder)]
    if classes:
        if files:
            raise CalibrationDataError(
                f"--calibration {folder}: images both directly in it and in label sub-folders; use one layout"
            )
        index = {label: position for position, label in enumerate(labels)}
        unknown = [path.name for path in classes if path.name not in index]
        if unknown:
            raise CalibrationDataError(
                f"--calibration {folder}: sub-folder(s) {', '.join(unknown)} name no label of the model card"
            )
        files = [(path, index[sub.name]) for sub in classes for path in _image_files(sub)]
    if not files:
        raise CalibrationDataError(
            f"--calibration {folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    samples: list[np.ndarray] = []
    for path, _label in files:
        try:
            samples.append(preprocess_image(path.read_bytes(), spec))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as error:
            raise CalibrationDataError(f"--calibration: cannot decode {path}: {error}") from None
    y = np.asarray([label for _, label in files], dtype=np.int64) if classes else None
    kind = "labelled" if classes else "unlabelled"
    return np.stack(samples), y, f"{len(files)} images from {folder} ({kind})"


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "x" not in archive:
                    raise CalibrationDataError(f"--calibration {path}: a .npz needs an array 'x' (and 'y')")
                x = np.asarray(archive["x"])
                y = np.asarray(archive["y"], dtype=np.int64) if "y" in archive else None
        else:
            x, y = np.asarray(np.load(path, allow_pickle=False)), None
    except (OSError, ValueError) as error:
        raise CalibrationDataError(f"--calibration {path}: not a readable .npy/.npz: {error}") from None
    if y is not None and y.shape != (x.shape[0],):
        raise CalibrationDataError(
            f"--calibration {path}: 'y' has shape {list(y.shape)}, want [{x.shape[0]}]"
        )
    return x, y, f"{x.shape[0]} tensors from {path} ({'labelled' if y is not None else 'unlabelled'})"


def load_calibration(
    path: Path,
    preprocessing: dict[str, Any] | None,
    input_shape: tuple[int, ...],
    labels: Sequence[str],
    holdout_fraction: float = HOLDOUT_FRACTION,
    seed: int = 0,
) -> CalibrationSet:
    """Reads `path` (see the module docstring) and splits it, seeded, into calibration and held-out parts."""
    if not 0.0 < holdout_fraction < 1.0:
        raise CalibrationDataError(f"--holdout-fraction {holdout_fraction}: must be between 0 and 1")
    if path.is_dir():
        if preprocessing is None:
            raise CalibrationDataError(
                f"--calibration {path}: images need the model card's preprocessing (give --card)"
            )
        x, y, description = _read_folder(path, preprocessing, labels)
    elif path.is_file() and path.suffix in (".npy", ".npz"):
        x, y, description = _read_arrays(path)
    else:
        raise CalibrationDataError(f"--calibration {path}: expected a folder of images, a .npy or a .npz")
    expected = tuple(input_shape[1:])
    if x.ndim == len(expected) + 2 and x.shape[1] == 1:  # tensors saved with their batch axis of 1
        x = x[:, 0]
    if tuple(x.shape[1:]) != expected:
        raise CalibrationDataError(
            f"--calibration: samples have shape {list(x.shape[1:])}, the model input needs {list(expected)}"
        )
    if x.shape[0] < 2:
        raise CalibrationDataError(
            f"--calibration: {x.shape[0]} sample(s); need at least 2 (calibrate + check)"
        )
    order = np.random.default_rng(seed).permutation(x.shape[0])
    held = max(1, round(x.shape[0] * holdout_fraction))
    held_rows, calibration_rows = order[:held], order[held:]
    x = x.astype(np.float32, copy=False)
    return CalibrationSet(
        calibration=x[calibration_rows],
        holdout=x[held_rows],
        holdout_labels=None if y is None else y[held_rows],
        description=description,
    )


@dataclass(frozen=True)
class Int8Report:
    """INT8 vs FP32 on the held-out samples."""

    samples: int
    agreement: float  # share of samples with the same top-1 class
    fp32_accuracy: float | None  # with labels only
    int8_accuracy: float | None
    max_loss: float

    @property
    def loss(self) -> float:
        return 1.0 - self.agreement

    @property
    def exceeded(self) -> bool:
        return self.loss > self.max_loss + 1e-12

    def summary(self) -> str:
        text = f"INT8 vs FP32 top-1 agreement {self.agreement:.2%} on {self.samples} held-out samples"
        if self.fp32_accuracy is not None and self.int8_accuracy is not None:
            text += f"; accuracy FP32 {self.fp32_accuracy:.2%}, INT8 {self.int8_accuracy:.2%}"
        return text + f" (allowed disagreement {self.max_loss:.2%})"


def int8_report(fp32: Path, int8: Path, data: CalibrationSet, max_loss: float) -> Int8Report:
    """Runs both models on the held-out samples (ONNX Runtime, CPU) and compares their top-1."""
    from edgeml.model.evaluate import cpu_session, predict_logits

    fp32_top1 = predict_logits(cpu_session(fp32), data.holdout).argmax(axis=1)
    int8_top1 = predict_logits(cpu_session(int8), data.holdout).argmax(axis=1)
    labels = data.holdout_labels
    return Int8Report(
        samples=int(data.holdout.shape[0]),
        agreement=float(np.mean(fp32_top1 == int8_top1)),
        fp32_accuracy=None if labels is None else float(np.mean(fp32_top1 == labels)),
        int8_accuracy=None if labels is None else float(np.mean(int8_top1 == labels)),
        max_loss=max_loss,
    )


def check_int8_loss(report: Int8Report, action: str) -> None:
    """Raises Int8LossTooHigh when the disagreement is over the limit and `action` is "refuse"."""
    if action not in LOSS_ACTIONS:
        raise CalibrationDataError(f"--int8-loss {action!r}: expected one of {', '.join(LOSS_ACTIONS)}")
    if report.exceeded and action == "refuse":
        raise Int8LossTooHigh(
            f"cpu-int8 refused: {report.summary()}; disagreement {report.loss:.2%} is over the limit "
            "(raise --max-int8-loss, give more or more typical --calibration data, or --int8-loss warn)"
        )
