"""Model hot swap: load the new model beside the old one, verify, warm up, switch under the batch lock.

Triggers: a ModelDirectory, ExecutionProviders or IntraOpThreads change in the configuration (the same
folder is reopened with the new runtime options), a model component update (PostComponentUpdateEvent),
or a newer version appearing under ModelDirectory (polled every ModelPollS). A PreComponentUpdateEvent is
answered only once the in-flight batch has ended. Any failure keeps the old model serving and emits a
`model_swap_failed` health event (health topic and stream). It does not report ERRORED: a nucleus stops and
restarts an ERRORED component (BROKEN after 3 errors; nucleus Lifecycle.java, docs greengrass-semantics §1.5),
which would throw away the model that still serves; ERRORED is for a process that must be restarted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeml_inference.config import AppConfig
from edgeml_inference.exceptions import InferenceAppError
from edgeml_inference.metadata import resolve_model_directory
from edgeml_inference.model import LoadedModel, ModelHolder, load_model

_log = logging.getLogger(__name__)
Loader = Callable[[Path, tuple[str, ...], int], LoadedModel]


class ModelSwapper:
    """Serialises swaps; `check()` is cheap when nothing changed."""

    def __init__(
        self,
        holder: ModelHolder,
        config: Callable[[], AppConfig],
        on_event: Callable[[dict[str, Any]], None],
        on_swapped: Callable[[LoadedModel], None] = lambda model: None,
        loader: Loader = load_model,
    ) -> None:
        self.holder = holder
        self.config = config
        self.on_event = on_event
        self.on_swapped = on_swapped
        self.loader = loader
        self._swap_lock = threading.Lock()
        self._failed: tuple[str, float, tuple[tuple[str, ...], int]] | None = None
        # the runtime options the serving model was opened with: a change reopens it (live configuration)
        self.options = self._options_of(config())
        self.swaps = 0
        self.failures = 0

    def candidate(self) -> Path | None:
        """The folder the configuration points at now, or None when it holds no model."""
        root = self.config().model_root()
        if not root:
            return None
        try:
            return resolve_model_directory(Path(root))
        except InferenceAppError:
            return None

    def check(self, reason: str = "poll") -> bool:
        """Swaps when the configured model differs from the one serving; True when a swap happened."""
        with self._swap_lock:
            directory = self.candidate()
            current = self.holder.current
            if directory is None:
                root = self.config().model_root()
                if reason != "poll" and root and Path(root).resolve() != current.directory.resolve():
                    return self._fail(Path(root), reason, f"no metadata.json under {root}")
                return False
            config = self.config()
            options = self._options_of(config)
            if (
                directory.resolve() == current.directory.resolve()
                and not self._changed(directory, current)
                and options == self.options
            ):
                return False
            stamp = _stamp(directory)
            if self._failed == (str(directory), stamp, options) and reason == "poll":
                return False
            try:
                new = self.loader(directory, config.execution_providers, config.intra_op_threads)
            except Exception as error:
                self._failed = (str(directory), stamp, options)
                return self._fail(directory, reason, str(error))
            old = self.holder.swap(new)
            self._failed = None
            self.options = options
            self.swaps += 1
            _log.info("model swapped (%s): %s -> %s", reason, old.directory, new.directory)
            self.on_swapped(new)
            self.on_event(
                {
                    "event": "model_swapped",
                    "reason": reason,
                    "from": {"version": old.metadata.version, "directory": str(old.directory)},
                    "to": {"version": new.metadata.version, "directory": str(new.directory)},
                }
            )
            return True

    @staticmethod
    def _options_of(config: AppConfig) -> tuple[tuple[str, ...], int]:
        return config.execution_providers, config.intra_op_threads

    @staticmethod
    def _changed(directory: Path, current: LoadedModel) -> bool:
        """Same folder but metadata.json rewritten with other files (an in-place update)."""
        from edgeml_inference.metadata import ModelMetadata

        try:
            return ModelMetadata.load(directory).files != current.metadata.files
        except InferenceAppError:
            return False

    def _fail(self, directory: Path, reason: str, detail: str) -> bool:
        self.failures += 1
        _log.error("model swap to %s failed (%s); the old model keeps serving: %s", directory, reason, detail)
        self.on_event(
            {"event": "model_swap_failed", "reason": reason, "directory": str(directory), "detail": detail}
        )
        return False

    def wait_for_batch(self, timeout: float = 30.0) -> bool:
        """Blocks until no batch is in flight (for PreComponentUpdateEvent)."""
        acquired = self.holder.lock.acquire(timeout=timeout)
        if acquired:
            self.holder.lock.release()
        return acquired


def _stamp(directory: Path) -> float:
    try:
        return (directory / "metadata.json").stat().st_mtime
    except OSError:
        return 0.0
