"""Small helpers for driving twins on loopback: a free port, and waiting for a condition."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimedOut(TimeoutError):
    """A condition did not come true in time; the message names what was awaited."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    condition: Callable[[], T | None], what: str, timeout_s: float = 30.0, every_s: float = 0.1
) -> T:
    """Polls `condition` until it returns something truthy and returns that; WaitTimedOut naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimedOut(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)
