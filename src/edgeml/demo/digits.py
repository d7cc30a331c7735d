"""Held-out digit images as 8-bit greyscale PNG files, the label in each file name."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from edgeml.model.datasets import digits_split

_LABELLED = re.compile(r"-label(\d+)\.png$")


def png_bytes(sample: np.ndarray) -> bytes:
    """One (1, 8, 8) sample in [0, 1] as an 8-bit greyscale PNG: what a camera-side app would drop."""
    pixels = np.clip(np.rint(sample.reshape(8, 8) * 255.0), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def write_holdout_images(directory: Path, count: int, offset: int = 0, seed: int = 0) -> dict[str, int]:
    """Writes held-out samples [offset, offset + count) as `<n>-label<y>.png`; returns name -> label.

    Each file is written under a temporary name and renamed, so the app never reads half a file.
    """
    holdout = digits_split(seed)[2]
    if offset + count > len(holdout):
        raise ValueError(f"the digits holdout has {len(holdout)} images; asked for {offset + count}")
    directory.mkdir(parents=True, exist_ok=True)
    labels: dict[str, int] = {}
    for index in range(offset, offset + count):
        label = int(holdout.y[index])
        name = f"{index:04d}-label{label}.png"
        staging = directory / f".{name}.tmp"
        staging.write_bytes(png_bytes(holdout.x[index]))
        os.replace(staging, directory / name)
        labels[name] = label
    return labels


def label_of(source: str) -> int | None:
    """The true label from a result's `source` ("file:0007-label3.png" -> 3), None for other sources."""
    match = _LABELLED.search(source)
    return int(match.group(1)) if match else None
