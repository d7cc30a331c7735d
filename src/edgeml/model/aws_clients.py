"""Plain boto3 clients for the model pipeline; where they point is only AWS_ENDPOINT_URL[_<SERVICE>]."""

from __future__ import annotations

import importlib
from typing import Any


def client(service: str) -> Any:
    """`boto3.client(service)`. boto3 ships no type hints, so it is imported as an untyped module."""
    boto3 = importlib.import_module("boto3")
    return boto3.client(service)
