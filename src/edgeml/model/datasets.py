"""Labelled data sets used to train, calibrate and evaluate the sample models (scikit-learn digits)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIGITS_CALIBRATION_SAMPLES = 200
DIGITS_HOLDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class LabelledSet:
    """Model inputs `x` (float32, N x C x H x W), their labels `y` (int64) and where they came from."""

    x: np.ndarray
    y: np.ndarray
    dataset_id: str

    def __len__(self) -> int:
        return int(self.y.shape[0])


def digits_dataset_id() -> str:
    """Id of the training data: scikit-learn's bundled digits, versioned by the scikit-learn release."""
    import sklearn

    return f"sklearn-digits/{sklearn.__version__}"


def digits_split(seed: int = 0) -> tuple[LabelledSet, LabelledSet, LabelledSet]:
    """(train, calibration, holdout) of scikit-learn's digits, images as float32 N x 1 x 8 x 8 in [0, 1].

    holdout is `train_test_split(test_size=0.2, random_state=seed, stratify=y)` (docs/model-metadata.md);
    calibration is a stratified subset of the training part, never of the holdout.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    x_train, x_hold, y_train, y_hold = train_test_split(
        images, labels, test_size=DIGITS_HOLDOUT_FRACTION, random_state=seed, stratify=labels
    )
    _, x_cal, _, y_cal = train_test_split(
        x_train, y_train, test_size=DIGITS_CALIBRATION_SAMPLES, random_state=seed, stratify=y_train
    )
    dataset_id = digits_dataset_id()
    return (
        LabelledSet(np.ascontiguousarray(x_train), y_train, dataset_id),
        LabelledSet(np.ascontiguousarray(x_cal), y_cal, f"sklearn-digits/calibration-seed{seed}"),
        LabelledSet(np.ascontiguousarray(x_hold), y_hold, f"sklearn-digits/holdout-seed{seed}"),
    )
