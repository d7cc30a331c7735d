"""The public components the twin provides itself, run as that component's process would be.

- aws.greengrass.Nucleus: the twin is the nucleus; its configuration (interpolateComponentConfiguration,
  ...) is the device's, its version what the twin claims (GGC_VERSION).
- aws.greengrass.TokenExchangeService: the credential endpoint is always served (`credentials.py`).
- aws.greengrass.StreamManager: the Stream Manager twin, configured from the component's real keys
  (DG stream-manager-component): STREAM_MANAGER_SERVER_PORT, STREAM_MANAGER_STORE_ROOT_DIR (relative to
  its work folder), STREAM_MANAGER_AUTHENTICATE_CLIENT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgeml.twin.device.nucleus.errors import NucleusTwinError
from edgeml.twin.device.nucleus.recipe import key
from edgeml.twin.device.nucleus.service import Service
from edgeml.twin.device.streammanager.server import StreamManagerServer

LOG = logging.getLogger(__name__)
STREAM_MANAGER = "aws.greengrass.StreamManager"
TOKEN_EXCHANGE = "aws.greengrass.TokenExchangeService"
NUCLEUS = "aws.greengrass.Nucleus"
DEFAULT_NUCLEUS_VERSION = "2.14.3"  # the newest the cloud twin offers: resolution keeps it (no self-update)
NUCLEUS_DEFAULTS: dict[str, Any] = {
    "interpolateComponentConfiguration": False,
    "deploymentPollingFrequencySeconds": 15,
    "fleetStatus": {"periodicStatusPublishIntervalSeconds": 86400},
}

Hook = Callable[[Service], None]


def _nothing(service: Service) -> None:
    return None


class StreamManagerProcess:
    """The Stream Manager twin as aws.greengrass.StreamManager's process on one device."""

    def __init__(
        self,
        work_path: Callable[[str], Path],
        configuration: Callable[[str], dict[str, Any]],
        port_map: Mapping[int, int],
        set_port: Callable[[int], None],
    ) -> None:
        self._work_path = work_path
        self._configuration = configuration
        self._port_map = dict(port_map)
        self._set_port = set_port
        self.server: StreamManagerServer | None = None

    def start(self, service: Service) -> None:
        config = self._configuration(STREAM_MANAGER)
        text = str(key(config, "STREAM_MANAGER_SERVER_PORT") or "8088")
        if not text.isdigit():
            raise NucleusTwinError(f"STREAM_MANAGER_SERVER_PORT is '{text}', not a port number")
        port = self._port_map.get(int(text), int(text))
        root = self._work_path(STREAM_MANAGER) / str(key(config, "STREAM_MANAGER_STORE_ROOT_DIR") or ".")
        authenticate = str(key(config, "STREAM_MANAGER_AUTHENTICATE_CLIENT") or "true").lower() == "true"
        if not authenticate:
            raise NucleusTwinError(
                "STREAM_MANAGER_AUTHENTICATE_CLIENT=false: the Stream Manager twin always checks a token"
            )
        # A real Stream Manager validates each client's AWS_CONTAINER_AUTHORIZATION_TOKEN (its SVCUID) with
        # the nucleus; the twin's server takes one token, so components cannot authenticate yet (reported).
        self.server = StreamManagerServer(root.resolve(), port=port)
        self.server.start()
        if port != int(text):
            self._set_port(self.server.port)

    def stop(self, service: Service) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def builtin_hooks(stream_manager: StreamManagerProcess) -> dict[str, tuple[Hook, Hook]]:
    return {
        NUCLEUS: (_nothing, _nothing),
        TOKEN_EXCHANGE: (_nothing, _nothing),
        STREAM_MANAGER: (stream_manager.start, stream_manager.stop),
    }
