"""One server per store root: an exclusive flock on `<root>/.lock`, released by the kernel even on kill -9."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from edgeml.twin.device.streammanager.errors import StreamManagerTwinError


class StoreInUseError(StreamManagerTwinError):
    """Another server process already serves this store root."""


class StoreLock:
    """Holds the store root's lock from `acquire` until `release`."""

    def __init__(self, root: Path) -> None:
        self.path = root / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StoreInUseError(
                f"store {self.path.parent} is in use by another Stream Manager twin"
            ) from None
        self._fd = descriptor

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
