"""nextToken/maxResults paging over a list that is already in its final order."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from edgeml.twin.cloud.service import ServiceError, validation_error

T = TypeVar("T")
DEFAULT_MAX_RESULTS = 50


def _decode(token: str) -> int:
    try:
        offset = int(base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii").removeprefix("o:"))
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise validation_error(
            "nextToken is not a token this API returned", field_name="nextToken"
        ) from error
    if offset < 0:
        raise validation_error("nextToken is not a token this API returned", field_name="nextToken")
    return offset


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode("ascii")).decode("ascii")


def page(
    items: Sequence[T], max_results: int | None, next_token: str | None, default: int = DEFAULT_MAX_RESULTS
) -> tuple[list[T], str | None]:
    """One page of `items` and the token of the next (None after the last)."""
    size = default if max_results is None else max_results
    if size < 1:
        raise validation_error("maxResults must be at least 1", field_name="maxResults")
    start = _decode(next_token) if next_token else 0
    end = start + size
    return list(items[start:end]), (encode_token(end) if end < len(items) else None)


def iot_page(
    items: Sequence[T], max_results: int | None, next_token: str | None, default: int = DEFAULT_MAX_RESULTS
) -> tuple[list[T], str | None]:
    """Same, with AWS IoT's error shape for a bad token."""
    try:
        return page(items, max_results, next_token, default)
    except ServiceError as error:
        raise ServiceError("InvalidRequestException", error.message) from error
