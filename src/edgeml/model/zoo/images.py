"""Sample images (bundled with scikit-learn, no downloads) and ImageNet pre-processing with Pillow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps


@dataclass(frozen=True)
class ImagePreprocessing:
    """How an RGB image becomes a model input: x = (pixel * scale - mean[c]) / std[c], NCHW.

    Field names and meaning follow `preprocessing` in docs/model-metadata.md, so the device app computes
    exactly what `imagenet_preprocess` computes.
    """

    size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0 / 255.0

    def to_metadata(self) -> dict[str, object]:
        return {
            "color": "RGB",
            "resize": list(self.size),
            "resample": "bilinear",
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": "NCHW",
        }


# EfficientNet-Lite was trained with inputs (pixel - 127) / 128 (TensorFlow's efficientnet_lite_builder).
EFFICIENTNET_LITE_PREPROCESSING = ImagePreprocessing(
    size=(224, 224), mean=(127.0 / 255.0,) * 3, std=(128.0 / 255.0,) * 3
)


def _square_crops(image: Image.Image) -> list[Image.Image]:
    width, height = image.size
    side = min(width, height)
    offsets = sorted({0, (width - side) // 2, width - side})
    top = (height - side) // 2
    return [image.crop((left, top, left + side, top + side)) for left in offsets]


def sample_images() -> list[Image.Image]:
    """RGB test images without downloads: square crops (left, centre, right) of scikit-learn's two sample
    photos (china.jpg, flower.jpg), each also mirrored: 12 images."""
    from sklearn.datasets import load_sample_images

    images: list[Image.Image] = []
    for array in load_sample_images().images:
        for crop in _square_crops(Image.fromarray(np.asarray(array, dtype=np.uint8)).convert("RGB")):
            images.extend([crop, ImageOps.mirror(crop)])
    return images


def preprocess(image: Image.Image, spec: ImagePreprocessing) -> np.ndarray:
    """`image` as a float32 1 x 3 x H x W array: RGB, Pillow bilinear resize, scaled and normalised."""
    height, width = spec.size
    resized = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32) * np.float32(spec.scale)
    normalised = (pixels - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)


def imagenet_preprocess(image: Image.Image) -> np.ndarray:
    """EfficientNet-Lite0 input (1 x 3 x 224 x 224 float32) for `image`."""
    return preprocess(image, EFFICIENTNET_LITE_PREPROCESSING)


def calibration_images(count: int = 32, seed: int = 0) -> list[Image.Image]:
    """`count` random square crops (half to full height, some mirrored) of scikit-learn's sample photos:
    calibration data for INT8 quantisation that differs from the evaluation crops of `sample_images`."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [
        Image.fromarray(np.asarray(array, dtype=np.uint8)).convert("RGB")
        for array in load_sample_images().images
    ]
    images: list[Image.Image] = []
    for index in range(count):
        photo = photos[index % len(photos)]
        width, height = photo.size
        side = int(rng.integers(min(width, height) // 2, min(width, height) + 1))
        left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        crop = photo.crop((left, top, left + side, top + side))
        images.append(ImageOps.mirror(crop) if rng.random() < 0.5 else crop)
    return images
