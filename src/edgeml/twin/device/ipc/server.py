"""`IpcServer`: the Greengrass nucleus' IPC service for one simulated core device, on a Unix socket.

Components connect with the unmodified `GreengrassCoreIPCClientV2`, finding the socket and their
token in AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and SVCUID (`component_env`). The
server runs its own asyncio loop on a daemon thread; all device state is touched on that loop, and
the twin-side hooks below hop onto it and wait for the result.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from edgeml.twin.device.ipc.components import LIFECYCLE_STATES, ComponentRegistry
from edgeml.twin.device.ipc.config_events import ConfigurationEvents, ValidityReport
from edgeml.twin.device.ipc.connection import ClientConnection
from edgeml.twin.device.ipc.errors import IpcTwinError, ServerStartError
from edgeml.twin.device.ipc.iotcore import IoTCoreBridge, MqttLogEntry
from edgeml.twin.device.ipc.operations import DeviceServices
from edgeml.twin.device.ipc.pubsub import PubSubBroker
from edgeml.twin.device.ipc.updates import ComponentUpdates, Deferral

SOCKET_ENV = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"
LEGACY_SOCKET_ENV = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH"
TOKEN_ENV = "SVCUID"
MAX_SOCKET_PATH_BYTES = 107  # sun_path is 108 bytes including the terminating NUL
START_TIMEOUT_S = 10.0
HOOK_GRACE_S = 5.0
TWIN_SOURCE = "edgeml.twin"
_log = logging.getLogger(__name__)
T = TypeVar("T")


def short_socket_path(prefix: str = "ggipc-") -> Path:
    """A fresh socket path in a new directory under /tmp (short enough for sun_path)."""
    base = "/tmp" if os.path.isdir("/tmp") else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base)) / "ipc.socket"


class IpcServer:
    """Greengrass IPC for the components of one simulated core device.

    `socket_path`: where to listen (None: a new short directory under /tmp, removed on stop).
    `forward_to_iot_core`: also send PublishToIoTCore through boto3 `iot-data` (AWS_ENDPOINT_URL,
    or `iot_data_endpoint_url`); every publish lands in `mqtt_log` either way.
    """

    def __init__(
        self,
        socket_path: Path | str | None = None,
        *,
        forward_to_iot_core: bool = True,
        iot_data_endpoint_url: str | None = None,
        validation_timeout_s: float = 20.0,
    ) -> None:
        self._owns_socket_dir = socket_path is None
        self.socket_path = Path(socket_path) if socket_path is not None else short_socket_path()
        if len(os.fsencode(self.socket_path)) > MAX_SOCKET_PATH_BYTES:
            raise ServerStartError(
                f"Unix socket path is {len(os.fsencode(self.socket_path))} bytes, over the "
                f"{MAX_SOCKET_PATH_BYTES}-byte limit: {self.socket_path}"
            )
        self.validation_timeout_s = validation_timeout_s
        self.services = DeviceServices(
            components=ComponentRegistry(),
            pubsub=PubSubBroker(),
            iot_core=IoTCoreBridge(forward_to_iot_core, iot_data_endpoint_url),
            config_events=ConfigurationEvents(),
            updates=ComponentUpdates(),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[ClientConnection] = set()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> IpcServer:
        """Binds the socket and serves on a daemon thread; returns once clients can connect."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=f"ipc-twin:{self.socket_path}", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._start_error is not None:
            self.stop()
            raise ServerStartError(f"IPC server did not start on {self.socket_path}: {self._start_error}")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self.socket_path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            self._server = loop.run_until_complete(
                asyncio.start_unix_server(self._accept, path=self.socket_path)
            )
        except BaseException as error:
            self._start_error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = ClientConnection(reader, writer, self.services)
        self._connections.add(connection)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    def stop(self) -> None:
        """Closes every connection, stops the loop and removes the socket (and its directory if ours)."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10.0)
        self._thread = None
        self._loop = None
        self.services.iot_core.stop()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        if self._owns_socket_dir:
            shutil.rmtree(self.socket_path.parent, ignore_errors=True)

    def __enter__(self) -> IpcServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- running things on the loop ----------------------------------------------------------------

    def _call(self, function: Callable[[], T]) -> T:
        """Runs `function` on the server loop (or directly when the server is not running)."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.current_thread() is self._thread:
            return function()

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(START_TIMEOUT_S)

    def _await(self, make: Callable[[], Awaitable[T]], timeout_s: float) -> T:
        loop = self._loop
        if loop is None or not loop.is_running():
            raise IpcTwinError("the IPC server is not running")
        if threading.current_thread() is self._thread:
            raise IpcTwinError("twin hooks that wait cannot be called from the server's own loop")

        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout_s + HOOK_GRACE_S)

    # -- components --------------------------------------------------------------------------------

    def register_component(self, name: str, configuration: Mapping[str, Any], version: str = "1.0.0") -> str:
        """Declares a component of this device; returns the SVCUID it connects with."""
        return self._call(lambda: self.services.components.register(name, configuration, version).svcuid)

    def component_env(self, name: str) -> dict[str, str]:
        """The environment a component process needs for `GreengrassCoreIPCClientV2()` to reach us."""
        record = self._call(lambda: self.services.components.get(name))
        path = str(self.socket_path)
        return {SOCKET_ENV: path, LEGACY_SOCKET_ENV: path, TOKEN_ENV: record.svcuid}

    @property
    def component_states(self) -> dict[str, str]:
        """Lifecycle state per component: RUNNING until the component reports otherwise (UpdateState)."""
        return self._call(lambda: {r.name: r.state for r in self.services.components.records()})

    def reported_states(self, name: str) -> list[str]:
        """Every state `name` reported through UpdateState, oldest first."""
        return self._call(lambda: list(self.services.components.get(name).reported_states))

    def set_component_state(self, name: str, state: str) -> None:
        """For the device runner: the lifecycle state GetComponentDetails reports."""
        if state not in LIFECYCLE_STATES:
            raise IpcTwinError(
                f"unknown lifecycle state {state!r}; expected one of {sorted(LIFECYCLE_STATES)}"
            )

        def apply() -> None:
            self.services.components.get(name).state = state

        self._call(apply)

    def on_state_reported(self, callback: Callable[[str, str], None] | None) -> None:
        """For the nucleus twin: `callback(component, state)` runs on the server loop for each UpdateState
        (it must not block)."""
        self.services.components.on_reported = callback

    def unregister_component(self, name: str) -> None:
        """A component the nucleus removed: its token no longer authenticates."""
        self._call(lambda: self.services.components.unregister(name))

    def component_version(self, name: str) -> str:
        return self._call(lambda: self.services.components.get(name).version)

    def configuration(self, name: str) -> dict[str, Any]:
        """A copy of `name`'s current configuration."""
        return self._call(lambda: self.services.components.get(name).config.snapshot())

    # -- deployments -------------------------------------------------------------------------------

    def push_configuration_update(
        self,
        component: str,
        new_config: Mapping[str, Any],
        *,
        deployment_id: str | None = None,
        timeout_s: float | None = None,
    ) -> ValidityReport:
        """Offers `new_config` (the component's whole new configuration) to its validators first.

        If any rejects (or none answers in time) the configuration is unchanged and the report says
        why; otherwise it replaces the configuration and SubscribeToConfigurationUpdate streams hear
        about every changed key.
        """
        wait = self.validation_timeout_s if timeout_s is None else timeout_s
        deployment = deployment_id or str(uuid.uuid4())
        proposed = json.loads(json.dumps(dict(new_config)))

        async def run() -> ValidityReport:
            services = self.services
            record = services.components.get(component)
            report = await services.config_events.validate(component, deployment, proposed, wait)
            if report.accepted:
                changed = record.config.replace(proposed)
                if changed:
                    services.config_events.notify(component, changed)
            return report

        return self._await(run, wait)

    def announce_component_update(
        self, deployment_id: str, components: Mapping[str, str], wait_s: float = 60.0
    ) -> list[Deferral]:
        """Sends PreComponentUpdateEvent and collects DeferComponentUpdate answers for up to `wait_s`.

        With no deferral, the new versions in `components` (name -> version) take effect and a
        PostComponentUpdateEvent follows; with deferrals nothing changes and they are returned, so
        the caller re-announces after the longest `recheck_after_ms`, as the nucleus does.
        """

        async def run() -> list[Deferral]:
            services = self.services
            deferrals = await services.updates.announce(deployment_id, wait_s)
            if not deferrals:
                for name, version in components.items():
                    record = services.components.find(name)
                    if record is not None:
                        record.version = version
                services.updates.finished(deployment_id)
            return deferrals

        return self._await(run, wait_s)

    # -- messages ----------------------------------------------------------------------------------

    @property
    def mqtt_log(self) -> list[MqttLogEntry]:
        """Every PublishToIoTCore so far, oldest first (topic, qos, payload, time, forwarding result)."""
        return self.services.iot_core.log

    def wait_iot_core_forwarded(self, timeout_s: float = 10.0) -> bool:
        """Waits until each logged publish reached iot-data or failed to; False on timeout."""
        return self.services.iot_core.wait_forwarded(timeout_s)

    def publish_from_cloud(self, topic: str, payload: bytes | str) -> int:
        """Delivers a cloud MQTT message to matching SubscribeToIoTCore streams; returns how many."""
        raw = payload.encode() if isinstance(payload, str) else payload
        return self._call(lambda: self.services.iot_core.deliver_from_cloud(topic, raw))

    def publish_local(self, topic: str, message: bytes | dict[str, Any], source: str = TWIN_SOURCE) -> int:
        """Publishes on the local pub/sub bus as `source` (no authorization); returns deliveries."""
        body: dict[str, Any] = (
            {"binaryMessage": {"message": base64.b64encode(message).decode()}}
            if isinstance(message, bytes)
            else {"jsonMessage": {"message": message}}
        )
        return self._call(lambda: self.services.pubsub.publish(source, topic, body))
