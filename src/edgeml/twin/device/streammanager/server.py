"""`StreamManagerServer`: the twin of Greengrass Stream Manager on a loopback TCP port.

It runs its own asyncio event loop on a background thread; every stream, segment and exporter is
touched only from that loop. boto3 calls of the exporters run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from edgeml.twin.device.streammanager.connection import ClientConnection
from edgeml.twin.device.streammanager.dispatch import RequestDispatcher
from edgeml.twin.device.streammanager.errors import StreamManagerTwinError
from edgeml.twin.device.streammanager.exporters.manager import ExportManager
from edgeml.twin.device.streammanager.exporters.retry import RetryPolicy
from edgeml.twin.device.streammanager.store.commit import GroupCommitter
from edgeml.twin.device.streammanager.store.lock import StoreLock
from edgeml.twin.device.streammanager.store.registry import StreamRegistry
from edgeml.twin.device.streammanager.store.stream import Clock

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
HOUSEKEEPING_INTERVAL_S = 1.0
START_TIMEOUT_S = 30.0
_log = logging.getLogger(__name__)


class ServerStartError(StreamManagerTwinError):
    """The server could not open its store or bind its port."""


class StreamManagerServer:
    """Serves the Stream Manager protocol for the unmodified SDK client, with streams under `store_root`.

    `auth_token` is what clients must present (AWS_CONTAINER_AUTHORIZATION_TOKEN); a random one is made
    when none is given, and an empty one is refused (clients that present none would match it).
    `token_validator` instead decides on each client's token, as aws.greengrass.StreamManager asks the
    nucleus whether it is a component's own (STREAM_MANAGER_AUTHENTICATE_CLIENT); `auth_token` is then
    not used, and `lambda token: True` is authentication off.
    `clock` (epoch seconds) stamps ingest times and drives TTL and batch intervals.
    """

    def __init__(
        self,
        store_root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        auth_token: str | None = None,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        retry: RetryPolicy | None = None,
        clock: Clock = time.time,
        token_validator: Callable[[str], bool] | None = None,
    ) -> None:
        self.store_root = Path(store_root)
        self.host = host
        self.port = port
        if auth_token == "":
            raise ValueError(
                "auth_token is empty: clients without a token would be let in; give None for a random one"
            )
        if token_validator is not None and auth_token is not None:
            raise ValueError("give auth_token or token_validator, not both")
        self.auth_token = auth_token if auth_token is not None else secrets.token_hex(16)
        self.token_validator = token_validator
        self.max_request_bytes = max_request_bytes
        self.max_response_bytes = max_response_bytes
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self.dispatcher: RequestDispatcher | None = None

    def client_env(self) -> dict[str, str]:
        """What a component needs in its environment for `StreamManagerClient()` to reach this server
        (with a `token_validator`, each component brings its own token)."""
        if self.token_validator is not None:
            return {"STREAM_MANAGER_SERVER_PORT": str(self.port)}
        return {
            "STREAM_MANAGER_SERVER_PORT": str(self.port),
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.auth_token,
        }

    def start(self) -> StreamManagerServer:
        """Recovers the store, binds the port, starts exporters; returns once clients can connect."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._thread_main, name="stream-manager-twin", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise ServerStartError("Stream Manager twin did not start in time")
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise ServerStartError(
                f"Stream Manager twin failed to start: {self._start_error}"
            ) from self._start_error
        return self

    def stop(self) -> None:
        """Stops exporters, closes connections and files; acknowledged messages are already on disk."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=30)
        self._thread = None

    def serve_until(self, stop: threading.Event) -> None:
        """Blocks until `stop` is set, then stops (for the command-line entry point)."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    def __enter__(self) -> StreamManagerServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- event loop thread ---------------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:
            if not self._ready.is_set():
                self._start_error = error
            else:
                _log.exception("Stream Manager twin stopped on an error")
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        lock = StoreLock(self.store_root)
        lock.acquire()
        try:
            await self._serve_store()
        finally:
            lock.release()

    async def _serve_store(self) -> None:
        assert self._stopping is not None
        registry = StreamRegistry.recover(self.store_root, self.clock)
        committer = GroupCommitter()
        exports = ExportManager(registry, self._append_status, self.retry)
        self.dispatcher = RequestDispatcher(registry, committer, exports, self.max_response_bytes)
        dispatcher = self.dispatcher
        connections: set[ClientConnection] = set()

        def accept() -> ClientConnection:
            connection = ClientConnection(
                dispatcher,
                self.auth_token if self.token_validator is None else None,
                self.max_request_bytes,
                on_closed=connections.discard,
                token_validator=self.token_validator,
            )
            connections.add(connection)
            return connection

        server = await asyncio.get_running_loop().create_server(accept, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        for stream in registry.streams():
            await exports.configure(stream)
        housekeeping = asyncio.get_running_loop().create_task(self._housekeeping(registry))
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            housekeeping.cancel()
            requests = [task for connection in connections for task in connection.in_flight]
            for connection in list(connections):
                connection.close()
            for task in requests:
                task.cancel()
            await asyncio.gather(*requests, housekeeping, return_exceptions=True)
            await exports.stop()
            registry.close()

    async def _append_status(self, stream_name: str, payload: bytes) -> None:
        assert self.dispatcher is not None
        await self.dispatcher.append_durably(stream_name, payload)

    async def _housekeeping(self, registry: StreamRegistry) -> None:
        """Applies time_to_live_millis even to streams nobody appends to."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL_S)
            for stream in registry.streams():
                stream.expire()
