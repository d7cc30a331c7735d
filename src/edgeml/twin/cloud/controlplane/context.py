"""What a backend call knows about the request beyond its members: region, account, the endpoint it came to.

The protocol layer sets it per request (`with request_context(region=..., endpoint_url=...)`); calls made
in-process without it get the twin's defaults (us-east-1, moto's default account, `AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from moto.core.models import DEFAULT_ACCOUNT_ID

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class RequestContext:
    region: str
    account_id: str
    endpoint_url: str


_current: ContextVar[RequestContext | None] = ContextVar("edgeml_controlplane_request", default=None)


def current() -> RequestContext:
    """The context of the request being served, or the twin's defaults."""
    found = _current.get()
    if found is not None:
        return found
    return RequestContext(
        region=os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION),
        account_id=DEFAULT_ACCOUNT_ID,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL", ""),
    )


@contextmanager
def request_context(
    *, region: str = DEFAULT_REGION, endpoint_url: str = "", account_id: str = DEFAULT_ACCOUNT_ID
) -> Iterator[RequestContext]:
    """Serve the calls inside as a request to `endpoint_url` in `region` (what the protocol layer sets)."""
    context = RequestContext(region=region, account_id=account_id, endpoint_url=endpoint_url)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
