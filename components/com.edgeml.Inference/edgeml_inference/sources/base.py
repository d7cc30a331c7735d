"""Input sources: each one turns what arrives into `submit(payload, source)` calls on the batching queue."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from edgeml_inference.answer import Answer

Submit = Callable[[bytes, str], "Answer"]
SubmitGroup = Callable[[list[tuple[bytes, str]]], "list[Answer]"]


class Source(ABC):
    """Started once, stopped once; restarted by the app when its configuration keys change."""

    name: str = "source"

    @abstractmethod
    def start(self) -> None:
        """Begins accepting inputs (returns at once)."""

    @abstractmethod
    def stop(self) -> None:
        """Stops accepting inputs and releases threads, sockets and subscriptions."""
