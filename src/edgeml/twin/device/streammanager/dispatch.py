"""Request dispatch: one handler per operation, each turning a decoded SDK request into its response."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from stream_manager import data as sm

from edgeml.twin.device.streammanager.errors import (
    InvalidRequestError,
    NotEnoughMessagesError,
    ResponsePayloadTooLargeError,
    StreamManagerTwinError,
    StreamNotFoundError,
)
from edgeml.twin.device.streammanager.exporters.manager import ExportManager
from edgeml.twin.device.streammanager.protocol import (
    APPEND_REQUEST,
    OPERATIONS,
    UNKNOWN_OPERATION_STATUS,
    append_response_frame,
    decode_append,
    decode_request,
    error_frame,
    request_id_of,
    response_frame,
)
from edgeml.twin.device.streammanager.store.commit import GroupCommitter
from edgeml.twin.device.streammanager.store.registry import StreamRegistry
from edgeml.twin.device.streammanager.store.stream import MessageStream

Handler = Callable[[Any], Awaitable[Any]]
_UNKNOWN_FAILURE = 1
_APPEND_SPEC = OPERATIONS[APPEND_REQUEST]
_log = logging.getLogger(__name__)


class RequestDispatcher:
    """Answers every operation after the connect handshake; runs on the server's event loop."""

    def __init__(
        self,
        registry: StreamRegistry,
        committer: GroupCommitter,
        exports: ExportManager,
        max_response_bytes: int,
    ) -> None:
        self.registry = registry
        self.committer = committer
        self.exports = exports
        self.max_response_bytes = max_response_bytes
        self._handlers: dict[int, Handler] = {
            sm.Operation.CreateMessageStream.value: self._create,
            sm.Operation.UpdateMessageStream.value: self._update,
            sm.Operation.DeleteMessageStream.value: self._delete,
            sm.Operation.DescribeMessageStream.value: self._describe,
            sm.Operation.ListStreams.value: self._list,
            sm.Operation.ReadMessages.value: self._read,
        }

    async def handle(self, operation: int, payload: bytes) -> bytes:
        """The response frame for one request frame (errors included)."""
        if operation == APPEND_REQUEST:
            answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self.append(payload, answer.set_result)
            return await answer
        handler = self._handlers.get(operation)
        if handler is None:
            return error_frame(
                None, request_id_of(payload), UNKNOWN_OPERATION_STATUS, f"unknown operation {operation}"
            )
        spec = OPERATIONS[operation]
        request_id: str | None = None
        try:
            request = decode_request(spec, payload)
            request_id = request.request_id
            response = await handler(request)
            response.request_id = request_id
            response.status = sm.ResponseStatusCode.Success
            return response_frame(spec, response)
        except StreamManagerTwinError as error:
            return error_frame(spec, request_id or request_id_of(payload), error.status_code, str(error))
        except Exception as error:
            _log.exception("operation %d failed", operation)
            return error_frame(spec, request_id or request_id_of(payload), _UNKNOWN_FAILURE, repr(error))

    async def append_durably(self, stream_name: str, payload: bytes) -> int:
        """Appends and returns once the message is durable (also used for S3 status messages)."""
        stream = self.registry.get(stream_name)
        sequence_number = stream.append(payload)
        await self.committer.durable(stream)
        return sequence_number

    async def _create(self, request: Any) -> Any:
        stream = self.registry.create(request.definition)
        await self.exports.configure(stream)
        return sm.CreateMessageStreamResponse()

    async def _update(self, request: Any) -> Any:
        stream = self.registry.update(request.definition)
        await self.exports.configure(stream)
        return sm.UpdateMessageStreamResponse()

    async def _delete(self, request: Any) -> Any:
        self.registry.get(request.name)
        await self.exports.remove(request.name)
        self.registry.delete(request.name)
        return sm.DeleteMessageStreamResponse()

    async def _list(self, request: Any) -> Any:
        return sm.ListStreamsResponse(streams=self.registry.names())

    async def _describe(self, request: Any) -> Any:
        stream = self.registry.get(request.name)
        storage = stream.storage_status()
        statuses = [
            sm.MessageStreamInfo.exportStatuses(
                export_config_identifier=status.identifier,
                last_exported_sequence_number=status.last_exported_sequence_number,
                last_export_time=status.last_export_time_ms,
                error_message=status.error_message,
                exported_bytes_from_stream=status.exported_bytes,
                exported_messages_count=status.exported_messages,
            )
            for status in self.exports.statuses(stream.name)
        ]
        info = sm.MessageStreamInfo(
            definition=stream.definition,
            storage_status=sm.MessageStreamInfo.storageStatus(
                oldest_sequence_number=storage.oldest_sequence_number,
                newest_sequence_number=storage.newest_sequence_number,
                total_bytes=storage.total_bytes,
            ),
            export_statuses=statuses,
        )
        return sm.DescribeMessageStreamResponse(message_stream_info=info)

    def append(self, payload: bytes, reply: Callable[[bytes], None], appender: object = None) -> None:
        """AppendMessage, the one operation devices call in a loop: no SDK objects, no task, no future.

        The record is written now; `reply` gets the response frame once the group commit made it durable
        (or at once with the error frame when the request cannot be appended). `appender` (the
        connection) lets the group commit wait briefly for other active appenders.
        """
        request_id: str | None = None
        try:
            request_id, name, data = decode_append(payload)
            stream = self.registry.get(name)
            sequence_number = stream.append(data)
        except StreamManagerTwinError as error:
            reply(
                error_frame(_APPEND_SPEC, request_id or request_id_of(payload), error.status_code, str(error))
            )
            return
        except Exception as error:
            _log.exception("append failed")
            reply(
                error_frame(_APPEND_SPEC, request_id or request_id_of(payload), _UNKNOWN_FAILURE, repr(error))
            )
            return
        success = append_response_frame(request_id, sequence_number)

        def durable(failure: OSError | None) -> None:
            if failure is None:
                reply(success)
            else:
                _log.error("fsync failed, append %s not acknowledged: %s", request_id, failure)
                reply(error_frame(_APPEND_SPEC, request_id, _UNKNOWN_FAILURE, repr(failure)))

        self.committer.after_durable(stream, durable, appender)

    async def _read(self, request: Any) -> Any:
        options = request.read_messages_options or sm.ReadMessagesOptions()
        start = options.desired_start_sequence_number or 0
        min_count = options.min_message_count or 1
        max_count = options.max_message_count or min_count
        if min_count > max_count:
            raise InvalidRequestError("min_message_count must be less than or equal to max_message_count")
        stream = self.registry.get(request.stream_name)
        await self._wait_for_messages(stream, start, min_count, (options.read_timeout_millis or 0) / 1000)
        messages = stream.read(start, max_count, self.max_response_bytes)
        if len(messages) < min_count:
            raise ResponsePayloadTooLargeError(
                f"{min_count} messages do not fit in a response of {self.max_response_bytes} bytes"
            )
        return sm.ReadMessagesResponse(
            messages=[
                sm.Message(
                    stream_name=stream.name,
                    sequence_number=message.sequence_number,
                    ingest_time=message.ingest_time_ms,
                    payload=message.payload,
                )
                for message in messages
            ]
        )

    async def _wait_for_messages(
        self, stream: MessageStream, start: int, min_count: int, timeout_s: float
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while stream.available_from(start) < min_count:
            if stream.closed:
                raise StreamNotFoundError(f"message stream {stream.name!r} was deleted")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NotEnoughMessagesError(
                    f"{stream.available_from(start)} messages available from sequence number {start}, "
                    f"{min_count} requested"
                )
            await stream.wait_for_change(remaining)
