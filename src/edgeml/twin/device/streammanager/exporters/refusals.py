"""Which failed AWS calls are final refusals of the service, and which are worth retrying.

A refusal is an error response that the same request will get again (NoSuchBucket, AccessDenied,
InvalidBucketName, ...): Stream Manager reports such an S3 task as `Failure` and goes on with the next
one (AWS docs, "Monitor export tasks": "Failure. Stream manager encountered an error, for example, the
specified bucket does not exist"). Everything else is retried with backoff: no response at all
(connection refused, timeouts) and the responses botocore's standard retry mode treats as transient or
throttling (botocore/retries/standard.py: HTTP 500/502/503/504 and 429, RequestTimeout, SlowDown, ...).
"""

from __future__ import annotations

import importlib
from typing import Any

_botocore_exceptions: Any = importlib.import_module("botocore.exceptions")

RETRYABLE_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})
RETRYABLE_ERROR_CODES = frozenset(
    {
        # transient (TransientRetryableChecker)
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",  # S3's code for its HTTP 500
        # throttling (ThrottledRetryableChecker)
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)


def _client_error_in(error: BaseException) -> Any:
    """The botocore ClientError behind `error`: itself, or what it was raised from or during.

    boto3's `upload_file` turns a ClientError into `S3UploadFailedError` inside its `except` clause, so
    the service's answer is the new error's `__context__`.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, _botocore_exceptions.ClientError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def service_refusal(error: BaseException) -> str | None:
    """`"<Code>: <message> (HTTP <status>)"` when the service refused for good, else None (retry it)."""
    client_error = _client_error_in(error)
    if client_error is None:
        return None
    response = client_error.response or {}
    details = response.get("Error", {})
    code = str(details.get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in RETRYABLE_ERROR_CODES or status in RETRYABLE_STATUS_CODES:
        return None
    if not code and not isinstance(status, int):
        return None
    text = str(details.get("Message", "")).strip()
    where = f" (HTTP {status})" if isinstance(status, int) else ""
    return f"{code or 'error'}: {text}{where}" if text else f"{code or 'error'}{where}"
