"""The interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Backend(ABC):
    """Runs a batch (N x sample shape) through one loaded model and returns the output (N x ...)."""

    name: str = "backend"
    providers: tuple[str, ...] = ()
    fixed_batch: int | None = None  # the model's fixed batch size; None when any batch size works

    @abstractmethod
    def run(self, batch: np.ndarray) -> np.ndarray:
        """Runs the model; raises on runtime failure (the pipeline turns it into error results)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases the model (called after a swap, once no batch uses it)."""
