"""Failures the Stream Manager twin answers with, each carrying the protocol's response status code.

The codes are `stream_manager.data.ResponseStatusCode` values; the SDK client turns each one into its own
exception class (`utilinternal.UtilInternal.raise_on_error_response`).
"""

from __future__ import annotations

from typing import ClassVar

from edgeml.errors import EdgemlError


class StreamManagerTwinError(EdgemlError):
    """Base of every failure a request can end in; `status_code` is what goes back on the wire."""

    status_code: ClassVar[int] = 1  # UnknownFailure


class InvalidRequestError(StreamManagerTwinError):
    """The request was malformed, failed the SDK's own validation, or asks for something impossible."""

    status_code = 3


class RequestPayloadTooLargeError(StreamManagerTwinError):
    """The request frame is larger than the server accepts."""

    status_code = 4


class StreamNotFoundError(StreamManagerTwinError):
    """No message stream has that name."""

    status_code = 5


class ResponsePayloadTooLargeError(StreamManagerTwinError):
    """The messages asked for (at least min_message_count of them) do not fit in one response."""

    status_code = 7


class NotEnoughMessagesError(StreamManagerTwinError):
    """Fewer than min_message_count messages were available before read_timeout_millis ran out."""

    status_code = 13


class MessageStoreReadError(StreamManagerTwinError):
    """A stored record could not be read back (I/O error or a checksum that does not match)."""

    status_code = 14


class StreamFullError(StreamManagerTwinError):
    """The stream is at max_size and its strategy is RejectNewData (the SDK: ServerOutOfMemoryException)."""

    status_code = 15


class UpdateNotAllowedError(StreamManagerTwinError):
    """An update tried to change a property that cannot change on an existing stream."""

    status_code = 17


class UnauthorizedError(StreamManagerTwinError):
    """The connect request carried no auth token or the wrong one."""

    status_code = 2


class FramingError(StreamManagerTwinError):
    """The byte stream no longer splits into frames; the connection is answered once and closed."""

    status_code = 3
