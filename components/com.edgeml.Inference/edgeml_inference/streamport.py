"""Finding and reaching Stream Manager as a Greengrass component must.

The nucleus does not put STREAM_MANAGER_SERVER_PORT in a component's environment; Stream Manager's port is
its own configuration key (aws.greengrass.StreamManager `STREAM_MANAGER_SERVER_PORT`, default 8088), which
any component may read with IPC GetConfiguration (componentName set; reading another component's
configuration needs no authorization policy). So the port is, in order: the environment variable when set
(a non-Greengrass host, the tests), else that configuration over IPC, else 8088. Which one was used is logged.

When a stream is configured and Stream Manager cannot be reached within the bounded wait,
`StreamManagerUnreachable` is raised; `__main__` then reports ERRORED and exits non-zero, so the nucleus
restarts the app instead of it running without its result, health and capture streams.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger(__name__)
STREAM_MANAGER_COMPONENT = "aws.greengrass.StreamManager"
PORT_KEY = "STREAM_MANAGER_SERVER_PORT"
DEFAULT_PORT = 8088
RETRY_S = 0.5

ReadConfiguration = Callable[[str, list[str]], Mapping[str, Any]]
"""(component name, key path) -> the GetConfiguration value ({last key: value} for a leaf)."""


class StreamManagerUnreachable(Exception):
    """A configured stream cannot be used: Stream Manager did not answer within the wait."""


@dataclass(frozen=True)
class StreamManagerPort:
    port: int
    source: str  # "environment", "aws.greengrass.StreamManager configuration" or "default"


def _port(value: Any) -> int | None:
    try:
        port = int(str(value).strip())
    except ValueError:
        return None
    return port if 1 <= port <= 65535 else None


def discover_port(
    environ: Mapping[str, str], read_configuration: ReadConfiguration | None
) -> StreamManagerPort:
    """The port from the environment, else Stream Manager's configuration over IPC, else 8088."""
    if environ.get(PORT_KEY):
        port = _port(environ[PORT_KEY])
        if port is not None:
            return StreamManagerPort(port, "environment")
        _log.warning("ignoring %s=%r: not a port", PORT_KEY, environ[PORT_KEY])
    if read_configuration is not None:
        try:
            value = read_configuration(STREAM_MANAGER_COMPONENT, [PORT_KEY]).get(PORT_KEY)
        except Exception as error:  # ResourceNotFoundError: Stream Manager not deployed
            _log.info("no %s configuration over IPC (%s)", STREAM_MANAGER_COMPONENT, error)
        else:
            port = _port(value)
            if port is not None:
                return StreamManagerPort(port, f"{STREAM_MANAGER_COMPONENT} configuration")
            if value is not None:
                _log.warning("ignoring %s %s=%r: not a port", STREAM_MANAGER_COMPONENT, PORT_KEY, value)
    return StreamManagerPort(DEFAULT_PORT, "default")


def _sdk_client(port: int) -> Any:
    from stream_manager import StreamManagerClient

    return StreamManagerClient(port=port)


def connect(
    where: StreamManagerPort, wait_s: float, client_factory: Callable[[int], Any] = _sdk_client
) -> Any:
    """A connected client; retries until `wait_s` passed, then raises StreamManagerUnreachable."""
    _log.info("Stream Manager port %d (from %s)", where.port, where.source)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return client_factory(where.port)
        except Exception as error:  # ConnectionError, asyncio.TimeoutError, StreamManagerException
            if time.monotonic() >= deadline:
                raise StreamManagerUnreachable(
                    f"Stream Manager not reachable on 127.0.0.1:{where.port} (port from {where.source}) "
                    f"after {wait_s:g} s: {error}"
                ) from error
            _log.info("Stream Manager not reachable yet (%s); retrying", error)
            time.sleep(RETRY_S)
