"""DLR backend for SageMaker Neo artifacts (a folder with compiled.so etc.); `dlr` is imported lazily."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeml_inference.backends.base import Backend
from edgeml_inference.exceptions import BackendUnavailable


class DlrBackend(Backend):
    """`dlr.DLRModel` over a Neo output folder; device type from the accelerator ("cpu" or "gpu")."""

    name = "dlr"

    def __init__(
        self, model_dir: Path, input_name: str, device: str = "cpu", fixed_batch: int | None = None
    ) -> None:
        try:
            import dlr
        except ImportError as error:
            raise BackendUnavailable(
                "this model is a SageMaker Neo (dlr) artifact but the dlr package is not installed; "
                "install the com.edgeml.Runtime component for this platform"
            ) from error
        try:
            self.model: Any = dlr.DLRModel(str(model_dir), device)
        except Exception as error:  # dlr raises plain Exceptions
            raise BackendUnavailable(f"dlr cannot load {model_dir}: {error}") from error
        self.input_name = input_name
        self.fixed_batch = fixed_batch  # Neo compiles for the input shape it was given
        self.providers = (f"dlr-{device}",)

    def run(self, batch: np.ndarray) -> np.ndarray:
        outputs = self.model.run({self.input_name: batch})
        return np.asarray(outputs[0])
