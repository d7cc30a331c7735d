"""The AWS half of the cloud twin: a moto server on loopback that plain boto3 clients are pointed at."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from moto.server import ThreadedMotoServer

TWIN_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer:
    """A moto server bound to 127.0.0.1 on a free port; stops with the context or `stop()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        # werkzeug logs every request at INFO to stderr even with verbose=False
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.endpoint_url = ""

    def start(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def env(self) -> dict[str, str]:
        """Environment that points every boto3 client at this server, with throwaway credentials."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **TWIN_CREDENTIALS}

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


@contextmanager
def pointed_at(env: dict[str, str]) -> Iterator[None]:
    """Sets `env` in os.environ for the duration, restoring what was there before."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
