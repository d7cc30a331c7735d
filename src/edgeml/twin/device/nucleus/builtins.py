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
import shlex
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgeml.twin.device.nucleus.errors import NucleusTwinError
from edgeml.twin.device.nucleus.recipe import key
from edgeml.twin.device.nucleus.service import Service
from edgeml.twin.device.nucleus.steps import ComponentLog, Step, StepProcess

LOG = logging.getLogger(__name__)
STREAM_MANAGER = "aws.greengrass.StreamManager"
TOKEN_EXCHANGE = "aws.greengrass.TokenExchangeService"
NUCLEUS = "aws.greengrass.Nucleus"
START_TIMEOUT_S = 30.0
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
    """The Stream Manager twin as aws.greengrass.StreamManager's process on one device (`smprocess`), with
    the component environment the nucleus gives it."""

    def __init__(
        self,
        work_path: Callable[[str], Path],
        configuration: Callable[[str], dict[str, Any]],
        port_map: Mapping[int, int],
        set_port: Callable[[int], None],
        environment: Callable[[Service], dict[str, str]],
        credentials_uri: Callable[[], str],
        log: Callable[[str], ComponentLog],
    ) -> None:
        self._work_path = work_path
        self._configuration = configuration
        self._port_map = dict(port_map)
        self._set_port = set_port
        self._environment = environment
        self._credentials_uri = credentials_uri
        self._log = log
        self.process: StepProcess | None = None
        self.port = 0

    def start(self, service: Service) -> None:
        config = self._configuration(STREAM_MANAGER)
        text = str(key(config, "STREAM_MANAGER_SERVER_PORT") or "8088")
        if not text.isdigit():
            raise NucleusTwinError(f"STREAM_MANAGER_SERVER_PORT is '{text}', not a port number")
        port = self._port_map.get(int(text), int(text))
        work = self._work_path(STREAM_MANAGER)
        root = (work / str(key(config, "STREAM_MANAGER_STORE_ROOT_DIR") or ".")).resolve()
        authenticate = str(key(config, "STREAM_MANAGER_AUTHENTICATE_CLIENT") or "true").lower() == "true"
        # each client's AWS_CONTAINER_AUTHORIZATION_TOKEN (its SVCUID) is checked with the nucleus
        validate = self._credentials_uri() if authenticate else ""
        command = [
            sys.executable,
            "-m",
            "edgeml.twin.device.nucleus.smprocess",
            "--store",
            str(root),
            "--port",
            str(port),
            "--validate-uri",
            validate,
        ]
        step = Step("run", "exec " + " ".join(shlex.quote(part) for part in command), None)
        self.process = StepProcess(
            step, work, self._environment(service), self._log(STREAM_MANAGER), lambda: service.state
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(port):
            if not self.process.running():
                raise NucleusTwinError(f"Stream Manager exited at start (port {port}); see its log")
            if time.monotonic() > deadline:
                self.process.stop()
                raise NucleusTwinError(
                    f"Stream Manager did not listen on port {port} in {START_TIMEOUT_S:g} s"
                )
            time.sleep(0.05)
        self.port = port
        if port != int(text):
            self._set_port(port)

    def stop(self, service: Service) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def builtin_hooks(stream_manager: StreamManagerProcess) -> dict[str, tuple[Hook, Hook]]:
    return {
        NUCLEUS: (_nothing, _nothing),
        TOKEN_EXCHANGE: (_nothing, _nothing),
        STREAM_MANAGER: (stream_manager.start, stream_manager.stop),
    }
