"""Where a rollout reads the time and waits: the wall clock, or an injected one (tests, benchmarks)."""

from __future__ import annotations

import time
from typing import Protocol


class Waiter(Protocol):
    def now(self) -> float:
        """Epoch seconds."""
        ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
