"""Input sources: each one turns what arrives into `submit(payload, source)` calls on the batching queue."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future

from edgeml_inference.results import InferenceResult

Submit = Callable[[bytes, str], "Future[InferenceResult]"]
SubmitGroup = Callable[[list[tuple[bytes, str]]], "list[Future[InferenceResult]]"]


class Source(ABC):
    """Started once, stopped once; restarted by the app when its configuration keys change."""

    name: str = "source"

    @abstractmethod
    def start(self) -> None:
        """Begins accepting inputs (returns at once)."""

    @abstractmethod
    def stop(self) -> None:
        """Stops accepting inputs and releases threads, sockets and subscriptions."""
