"""A loaded model (metadata + backend + pre/post-processing) and the holder that swaps it atomically."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeml_inference.backends import Backend, open_backend
from edgeml_inference.exceptions import InferenceAppError, ModelLoadError
from edgeml_inference.metadata import ModelMetadata, resolve_model_directory, verify_files
from edgeml_inference.postprocess import Postprocessor
from edgeml_inference.preprocess import Preprocessor

_log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """Everything needed to answer requests with one model version."""

    directory: Path
    metadata: ModelMetadata
    backend: Backend
    preprocess: Preprocessor
    postprocess: Postprocessor

    @property
    def identity(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Folder and file digests: two loads of the same files are the same model."""
        return str(self.directory), tuple(sorted(self.metadata.files.items()))

    def close(self) -> None:
        self.backend.close()


def load_model(root: Path, providers: tuple[str, ...] = ("CPU",), intra_op_threads: int = 1) -> LoadedModel:
    """Finds metadata.json under `root`, verifies every file's sha256, opens the backend and warms it up."""
    try:
        directory = resolve_model_directory(root)
        metadata = ModelMetadata.load(directory)
        verify_files(directory, metadata)
        backend = open_backend(directory, metadata, providers, intra_op_threads)
        model = LoadedModel(
            directory,
            metadata,
            backend,
            Preprocessor(metadata),
            Postprocessor(metadata.labels, metadata.softmax),
        )
        warm_up(model)
    except InferenceAppError as error:
        raise ModelLoadError(f"cannot load the model at {root}: {error}") from error
    _log.info(
        "loaded model %s %s from %s on %s", metadata.name, metadata.version, directory, backend.providers
    )
    return model


def warm_up(model: LoadedModel) -> None:
    """One run on a zero batch of one; the output must have a row per sample and be finite."""
    shape = (1, *(dim if dim is not None else 1 for dim in model.preprocess.sample_shape))
    try:
        output = model.backend.run(np.zeros(shape, dtype=model.preprocess.dtype))
    except Exception as error:  # runtimes raise their own classes
        raise ModelLoadError(f"warm-up run failed: {error}") from error
    if output.shape[:1] != (1,) or not np.all(np.isfinite(output)):
        raise ModelLoadError(
            f"warm-up output is unusable (shape {output.shape}, finite {np.isfinite(output).all()})"
        )


class ModelHolder:
    """The model in service; `lock` is held for a whole batch and for the switch (a swap never splits one)."""

    def __init__(self, model: LoadedModel) -> None:
        self.lock = threading.Lock()
        self._model = model

    @property
    def current(self) -> LoadedModel:
        return self._model

    def swap(self, new: LoadedModel) -> LoadedModel:
        """Switches to `new` once the in-flight batch ends, then releases the old model."""
        with self.lock:
            old, self._model = self._model, new
        old.close()
        return old
