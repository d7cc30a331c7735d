"""Stream Manager with the nucleus's client authentication: a real aws.greengrass.StreamManager asks the
nucleus whether a client's AWS_CONTAINER_AUTHORIZATION_TOKEN is a component's token (IPC
ValidateAuthorizationToken; DG stream-manager-component STREAM_MANAGER_AUTHENTICATE_CLIENT), so each
component connects with its own SVCUID. The Stream Manager twin's server compares one fixed token.

STOPGAP (reported to the Stream Manager twin's owner): until StreamManagerServer takes a token validator,
this subclass serves the same store and protocol with a connection class that asks the nucleus. It
mirrors StreamManagerServer._serve_store; nothing else differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from stream_manager.data import ResponseStatusCode

from edgeml.twin.device.streammanager.connection import ClientConnection
from edgeml.twin.device.streammanager.dispatch import RequestDispatcher
from edgeml.twin.device.streammanager.exporters.manager import ExportManager
from edgeml.twin.device.streammanager.server import StreamManagerServer
from edgeml.twin.device.streammanager.store.commit import GroupCommitter
from edgeml.twin.device.streammanager.store.registry import StreamRegistry

TokenValidator = Callable[[str], bool]


class _NucleusValidatedConnection(ClientConnection):
    validator: TokenValidator = staticmethod(lambda token: False)

    def _check_connect(self, version: int, frame: Any) -> tuple[int, str | None, Any]:
        status, message, request = super()._check_connect(version, frame)  # auth_token None: no fixed token
        if status == ResponseStatusCode.Success.value and not self.validator(
            getattr(request, "auth_token", None) or ""
        ):
            return ResponseStatusCode.Unauthorized.value, "invalid auth token", request
        return status, message, request


class NucleusAuthenticatedStreamManager(StreamManagerServer):
    """`validator(token)`: the nucleus's answer; None: no authentication (AUTHENTICATE_CLIENT=false)."""

    def __init__(self, *args: Any, validator: TokenValidator | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._validator = validator

    async def _serve_store(self) -> None:
        assert self._stopping is not None
        registry = StreamRegistry.recover(self.store_root, self.clock)
        committer = GroupCommitter()
        exports = ExportManager(registry, self._append_status, self.retry)
        self.dispatcher = RequestDispatcher(registry, committer, exports, self.max_response_bytes)
        dispatcher = self.dispatcher
        connections: set[ClientConnection] = set()
        validator = self._validator
        connection_class: type[ClientConnection] = ClientConnection
        if validator is not None:
            connection_class = type(
                "Connection", (_NucleusValidatedConnection,), {"validator": staticmethod(validator)}
            )

        def accept() -> ClientConnection:
            connection = connection_class(
                dispatcher, None, self.max_request_bytes, on_closed=connections.discard
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
