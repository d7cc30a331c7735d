"""Plain boto3 clients for the model pipeline; where they point is only AWS_ENDPOINT_URL[_<SERVICE>]."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from edgeml.errors import EdgemlError


class AwsUnavailable(EdgemlError):
    """boto3 could not make a call at all: no credentials, no region, endpoint unreachable."""


def client(service: str) -> Any:
    """`boto3.client(service)`. boto3 ships no type hints, so it is imported as an untyped module."""
    boto3 = importlib.import_module("boto3")
    return boto3.client(service)


@contextmanager
def reported_as_edgeml_errors() -> Iterator[None]:
    """Turns botocore's own failures (BotoCoreError: credentials, endpoint, region) into one-line errors."""
    botocore_error: type[Exception] = importlib.import_module("botocore.exceptions").BotoCoreError
    try:
        yield
    except botocore_error as error:
        raise AwsUnavailable(f"AWS call failed: {type(error).__name__}: {error}") from error
