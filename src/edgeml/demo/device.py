"""One simulated core device for the demo: the components' artifacts installed as the nucleus installs them,
the IPC and Stream Manager twins, and the inference app run from its built artifact as a process.

The app is started the way its recipe's Run step starts it (`python -m edgeml_inference` with the manifest's
Setenv), with this interpreter standing in for the Runtime component's venv, which holds the same packages.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stream_manager import ReadMessagesOptions, StreamManagerClient
from stream_manager.exceptions import NotEnoughMessagesException

from edgeml.components.build import BuildResult
from edgeml.components.gdkconfig import NEXT_PATCH
from edgeml.errors import EdgemlError
from edgeml.twin.cloud.motoserver import pointed_at
from edgeml.twin.device.artifacts import (
    InstalledArtifacts,
    device_platform,
    install_artifacts,
    select_manifest,
)
from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.device.streammanager.server import StreamManagerServer
from edgeml.twin.loopback import free_port, wait_for

INFERENCE = "com.edgeml.Inference"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class DeviceError(EdgemlError):
    """The simulated device could not install or run a component."""


class SimulatedCore:
    """A core device rooted at `root`: installs component versions and runs the inference app."""

    def __init__(self, root: Path, thing_name: str) -> None:
        self.root = root
        self.thing_name = thing_name
        self.platform = device_platform()
        self.installed: dict[str, InstalledArtifacts] = {}
        self.work = root / "work" / INFERENCE
        self.log_path = root / "logs" / f"{INFERENCE}.log"
        self.ipc = IpcServer()
        self.streams = StreamManagerServer(root / "stream_manager")
        self.http_port = free_port()
        self.configuration: dict[str, Any] = {}
        self._process: subprocess.Popen[bytes] | None = None

    # -- install -----------------------------------------------------------------------------------

    def install(self, build: BuildResult) -> InstalledArtifacts:
        """Installs a built component version (gdk's NEXT_PATCH placeholder installs as 1.0.0, the version
        publish would give a component's first version)."""
        artifacts_dir = build.artifacts[0].parent if build.artifacts else build.recipe.parent
        version = "1.0.0" if build.version == NEXT_PATCH else build.version
        installed = install_artifacts(build.recipe, artifacts_dir, self.root, self.platform, version)
        self.installed[build.component] = installed
        return installed

    def interpolate(self, text: str, component: str) -> str:
        """Recipe variables the demo's recipes use: {artifacts:...}, {<Component>:artifacts:...},
        {iot:thingName}, {work:path}. Anything else is left as is (and noticed by the caller)."""

        def value(match: re.Match[str]) -> str:
            parts = match.group(1).split(":")
            if parts == ["iot", "thingName"]:
                return self.thing_name
            if parts == ["work", "path"]:
                return str(self.work)
            owner, namespace, key = [component, *parts] if len(parts) == 2 else [*parts, "", ""][:3]
            installed = self.installed.get(owner)
            if namespace == "artifacts" and installed is not None:
                return str(installed.decompressed_path if key == "decompressedPath" else installed.path)
            return match.group(0)

        return _PLACEHOLDER.sub(value, text)

    def default_configuration(self, component: str) -> dict[str, Any]:
        recipe = self.installed[component].recipe
        default = recipe.get("ComponentConfiguration", {}).get("DefaultConfiguration", {})
        configuration: dict[str, Any] = json.loads(self.interpolate(json.dumps(default), component))
        return configuration

    def run_environment(self, component: str) -> dict[str, str]:
        """The selected manifest's Lifecycle Setenv, interpolated."""
        manifest = select_manifest(self.installed[component].recipe, self.platform)
        setenv: Mapping[str, Any] = (manifest.get("Lifecycle") or {}).get("Setenv") or {}
        return {str(key): self.interpolate(str(value), component) for key, value in setenv.items()}

    # -- run ---------------------------------------------------------------------------------------

    def start(self, overrides: Mapping[str, Any]) -> None:
        """Starts the twins and the inference app; returns once its HTTP health answers."""
        self.work.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.configuration = {
            **self.default_configuration(INFERENCE),
            "HttpPort": self.http_port,
            **overrides,
        }
        self.ipc.start()
        self.ipc.register_component(INFERENCE, self.configuration, self.installed[INFERENCE].version)
        self.streams.start()
        env = {
            **os.environ,
            **self.run_environment(INFERENCE),
            **self.ipc.component_env(INFERENCE),
            **self.streams.client_env(),
            "AWS_IOT_THING_NAME": self.thing_name,
        }
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "edgeml_inference"], cwd=self.work, env=env, stdout=log, stderr=log
            )
        wait_for(lambda: self._healthy() or self._exited(), "the inference app to answer /v1/health")
        if self._exited():
            raise DeviceError(f"the inference app exited at start; its log:\n{self.log_path.read_text()}")

    def _exited(self) -> bool:
        return self._process is not None and self._process.poll() is not None

    def _get_health(self, timeout_s: float) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout_s)
        connection.request("GET", "/v1/health")
        return connection.getresponse()

    def _healthy(self) -> bool:
        try:
            return self._get_health(timeout_s=1).status == 200
        except OSError:
            return False

    def health(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = json.loads(self._get_health(timeout_s=5).read())
        return snapshot

    @contextmanager
    def _stream_client(self) -> Iterator[StreamManagerClient]:
        """The unmodified SDK client, authenticated as a component on this device."""
        with pointed_at(self.streams.client_env()), StreamManagerClient(port=self.streams.port) as client:
            yield client

    def read_stream(self, name: str, start: int = 0, timeout_ms: int = 2000) -> list[dict[str, Any]]:
        """Every message of a local stream from sequence number `start`, as JSON."""
        messages: list[dict[str, Any]] = []
        with self._stream_client() as client:
            while True:
                options = ReadMessagesOptions(
                    desired_start_sequence_number=start + len(messages),
                    min_message_count=1,
                    max_message_count=1000,
                    read_timeout_millis=timeout_ms if not messages else 0,
                )
                try:
                    batch = client.read_messages(name, options)
                except NotEnoughMessagesException:
                    return messages
                messages += [json.loads(message.payload) for message in batch]

    def export_statuses(self, stream: str) -> list[dict[str, Any]]:
        """`describe_message_stream`'s export status per exporter of a local stream."""
        with self._stream_client() as client:
            statuses = client.describe_message_stream(stream).export_statuses or []
        return [
            {
                "identifier": status.export_config_identifier,
                "last_exported_sequence_number": status.last_exported_sequence_number,
                "error_message": status.error_message,
            }
            for status in statuses
        ]

    def stop(self) -> int | None:
        """SIGTERM to the app (as the nucleus stops a component), then the twins; the app's exit code."""
        code = None
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                code = self._process.wait(15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                code = self._process.wait()
        elif self._process is not None:
            code = self._process.returncode
        self.streams.stop()
        self.ipc.stop()
        return code
