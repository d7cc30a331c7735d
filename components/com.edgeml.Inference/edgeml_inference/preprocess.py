"""One request payload (image bytes or a JSON tensor) -> the model's input tensor, per metadata.json."""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
import warnings
from typing import Any

import numpy as np
from PIL import Image

from edgeml_inference.exceptions import BadInput
from edgeml_inference.metadata import ModelMetadata, Preprocessing

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
_DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8, "uint8": np.uint8}
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    TypeError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
MAX_IMAGE_PIXELS = 50_000_000  # a decompression bomb is a bad input, not an out-of-memory
REDUCING_GAP = 3.0  # resize: box-reduce by an integer factor while >= 3x the target, then resample


Payload = bytes | np.ndarray
"""What a request carries: encoded bytes (image or JSON tensor) or, from in-process callers, an array."""


def payload_size(payload: Payload) -> int:
    return int(payload.nbytes) if isinstance(payload, np.ndarray) else len(payload)


class Preprocessor:
    """Decodes and normalises inputs for one model; `sample_shape` is the input shape without the batch."""

    def __init__(self, metadata: ModelMetadata) -> None:
        self.metadata = metadata
        self.config: Preprocessing = metadata.preprocessing
        shape = metadata.input_shape[1:]
        self.sample_shape: tuple[int | None, ...] = tuple(
            dim if isinstance(dim, int) else None for dim in shape
        )
        self.dtype = np.dtype(_DTYPES.get(metadata.input_dtype, np.float32))
        channels = len(self.config.mean)
        self._mean = np.asarray(self.config.mean, dtype=np.float32)
        self._std = np.asarray(self.config.std, dtype=np.float32)
        self._channels = channels
        self._raw_pixels = (
            self.dtype == np.uint8
            and self.config.layout.upper() == "NHWC"
            and float(self.config.scale) == 1.0
            and not self._mean.any()
            and bool((self._std == 1.0).all())
        )
        exact = all(dim is not None for dim in self.sample_shape)
        self._exact_shape: tuple[int | None, ...] | None = self.sample_shape if exact else None

    def __call__(self, payload: Payload, check_finite: bool = True) -> np.ndarray:
        """One sample (no batch axis): arrays and JSON objects are tensors, other bytes are images.

        `check_finite=False` leaves the NaN/infinity check of a float tensor to the caller, who then checks
        a whole batch in one pass (`finite_rows`); images are always checked here."""
        if isinstance(payload, np.ndarray):
            return self.tensor(payload, check_finite)
        if not payload:
            raise BadInput("empty_input", "the payload is empty")
        if payload[:1] in (b"{", b"[") or payload.lstrip()[:1] == b"{":
            return self.tensor(parse_tensor_json(payload), check_finite)
        return self.image(payload)

    def image(self, payload: bytes) -> np.ndarray:
        config = self.config
        pixels = decode_image(payload, config.color, config.resize, config.resample)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if self._raw_pixels:  # a uint8 NHWC model normalises in its graph: the decoded pixels are its input
            return self.tensor(pixels)
        x = (pixels.astype(np.float32) * np.float32(config.scale) - self._mean) / self._std
        if config.layout.upper() == "NCHW":
            x = np.transpose(x, (2, 0, 1))
        return self.tensor(x)

    @property
    def defers_finite_check(self) -> bool:
        """Whether `check_finite=False` leaves a check to the caller (float models; an integer model's cast
        needs the check before it)."""
        return self.dtype.kind == "f"

    def as_is(self, array: np.ndarray) -> bool:
        """Whether `array` is the model's input as it is: a contiguous sample of its exact shape and dtype
        (the common in-process case; only its finiteness is left to check)."""
        return array.shape == self._exact_shape and array.dtype == self.dtype and array.flags.c_contiguous

    def tensor(self, array: np.ndarray, check_finite: bool = True) -> np.ndarray:
        """Checks a decoded tensor against the model's input (with or without a batch axis of 1)."""
        if self.as_is(array):
            if check_finite and array.dtype.kind == "f" and not np.isfinite(array).all():
                raise BadInput("non_finite_input", "the tensor holds NaN or infinity")
            return array
        expected = self.sample_shape
        if array.ndim == len(expected) + 1 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != len(expected) or any(
            want is not None and got != want for got, want in zip(array.shape, expected, strict=True)
        ):
            shown = tuple("?" if dim is None else dim for dim in expected)
            raise BadInput("wrong_shape", f"tensor shape {list(array.shape)} != the input {list(shown)}")
        if array.dtype.kind in "iub":  # integers and booleans are finite: no check, at most a cast
            return np.ascontiguousarray(array, dtype=self.dtype)
        if self.dtype.kind != "f":  # float input for an integer model: NaN has no integer value
            if not np.isfinite(array).all():
                raise BadInput("non_finite_input", "the tensor holds NaN or infinity")
            return np.ascontiguousarray(array, dtype=self.dtype)
        # The check runs on the tensor the model gets: no copy when it is already of the model's dtype and
        # contiguous (a 600 KB frame is read once), and a value out of the model dtype's range, infinity
        # after the cast, is refused too.
        if array.dtype == self.dtype:
            tensor = np.ascontiguousarray(array)
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # out of range: inf, refused just below
                tensor = np.ascontiguousarray(array, dtype=self.dtype)
        if check_finite and not np.isfinite(tensor).all():
            raise BadInput("non_finite_input", "the tensor holds NaN or infinity")
        return tensor


def decode_image(
    payload: bytes,
    color: str,
    size: tuple[int, int] | None,
    resample: str = "bilinear",
    fast: bool = True,
) -> np.ndarray:
    """Image bytes -> uint8 pixels (H x W x C, or H x W for "L") in colour order `color` (Pillow's mode
    names: "RGB" is red, green, blue), resized to `size` = (height, width) with `resample`.

    `fast` (the default) does two things where they pay, both measured by benchmarks/bench_e2e.py against
    the exact path (`fast=False`: full decode, one resize): a JPEG much larger than `size` is decoded at a
    reduced scale by libjpeg (Pillow's draft mode: 1/2, 1/4 or 1/8, never below `size`), and the resize
    first reduces by an integer factor with a box filter, then resamples (Pillow's `reducing_gap`).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(payload))
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                raise BadInput("image_too_large", f"{opened.width}x{opened.height} pixels")
            if fast and size is not None and opened.format == "JPEG":
                height, width = size
                if opened.width >= 2 * width and opened.height >= 2 * height:
                    opened.draft(color if color in ("RGB", "L") else None, (width, height))
            opened.load()
        image = opened.convert(color)
    except BadInput:
        raise
    except _DECODE_ERRORS as error:
        raise BadInput("corrupt_image", f"cannot decode the image: {error}") from None
    if size is not None:
        height, width = size
        if image.size != (width, height):
            image = image.resize(
                (width, height),
                _RESAMPLE.get(resample, Image.Resampling.BILINEAR),
                reducing_gap=REDUCING_GAP if fast else None,
            )
    return np.asarray(image)


def finite_rows(batch: np.ndarray) -> np.ndarray:
    """One bool per sample of `batch` (N x ...): no NaN or infinity in it. One pass for the whole batch."""
    flat = batch.reshape(batch.shape[0], -1)
    return np.asarray(np.isfinite(flat).all(axis=1))


def parse_tensor_json(payload: bytes) -> np.ndarray:
    """{"shape": [...], "data": [...]} or {"shape": [...], "b64": "...", "dtype": "float32"}."""
    try:
        document: Any = json.loads(payload)
    except (ValueError, RecursionError) as error:
        raise BadInput("bad_tensor", f"not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise BadInput("bad_tensor", "a tensor is a JSON object with 'shape' and 'data' or 'b64'")
    shape = document.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(dim, int) and not isinstance(dim, bool) and 0 <= dim <= 1 << 24 for dim in shape
    ):
        raise BadInput("bad_tensor", "'shape' must be a list of non-negative integers")
    dtype = document.get("dtype", "float32")
    if dtype not in _DTYPES:
        raise BadInput("bad_tensor", f"unsupported dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    try:
        if "b64" in document:
            raw = base64.b64decode(str(document["b64"]), validate=True)
            flat = np.frombuffer(raw, dtype=_DTYPES[dtype])
        elif "data" in document:
            flat = np.asarray(document["data"], dtype=np.float64).reshape(-1)
        else:
            raise BadInput("bad_tensor", "a tensor needs 'data' or 'b64'")
        with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: refused later
            return flat.reshape(shape).astype(np.float32)
    except BadInput:
        raise
    except (ValueError, TypeError, binascii.Error, OverflowError) as error:
        raise BadInput("bad_tensor", f"data does not fit shape {shape}: {error}") from None
