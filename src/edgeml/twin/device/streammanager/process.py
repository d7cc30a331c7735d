"""The twin as a child process (`python -m edgeml.twin.device.streammanager`), for crash tests and devices.

The child exits when its stdin closes, so it never outlives the process that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from edgeml.twin.device.streammanager.errors import StreamManagerTwinError

_READY_PREFIX = "LISTENING "


class ServerProcessError(StreamManagerTwinError):
    """The server process exited before it was listening."""


class StreamManagerProcess:
    """Starts, kills (SIGKILL) and restarts a Stream Manager twin process on a store root."""

    def __init__(
        self, store_root: Path, auth_token: str, port: int = 0, env: dict[str, str] | None = None
    ) -> None:
        self.store_root = store_root
        self.auth_token = auth_token
        self.port = port
        self.env = env
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> StreamManagerProcess:
        command = [sys.executable, "-m", "edgeml.twin.device.streammanager", "--store", str(self.store_root)]
        command += ["--port", str(self.port), "--token", self.auth_token, "--exit-with-stdin"]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(self.env or {})},
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(_READY_PREFIX):
            process.kill()
            process.wait()
            raise ServerProcessError(f"server process exited with {process.returncode} before listening")
        self.port = int(line.removeprefix(_READY_PREFIX))
        self._process = process
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def client_env(self) -> dict[str, str]:
        return {
            "STREAM_MANAGER_SERVER_PORT": str(self.port),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.auth_token,
        }

    def kill(self) -> None:
        """kill -9: no shutdown code runs, open files are left as they are."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._reap()

    def stop(self) -> None:
        """Asks the server to stop (closing its stdin), then kills it if it has not stopped in time."""
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._reap()

    def _reap(self) -> None:
        assert self._process is not None
        self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()
        self._process = None

    def __enter__(self) -> StreamManagerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
