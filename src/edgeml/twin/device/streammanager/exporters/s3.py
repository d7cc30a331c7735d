"""S3ExportTaskExecutorConfig: each message is a JSON S3ExportTaskDefinition; upload its file to the object.

Status messages (StatusMessage JSON, as `Util.deserialize_json_bytes_to_obj` reads them) go to the status
stream of StatusConfig, filtered by its status level: InProgress and Success at INFO, Warning at WARN,
Failure at ERROR. A task that can never succeed (not a task, file missing, or an upload the service
refused: NoSuchBucket, AccessDenied, ...) is reported as Failure and skipped, as Stream Manager does; an
upload that failed for a passing reason (no connection, throttling, HTTP 5xx) is reported as Warning and
retried with backoff like any other export.
"""

from __future__ import annotations

import importlib
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from stream_manager import data as sm
from stream_manager.util import Util
from stream_manager.utilinternal import UtilInternal

from edgeml.twin.device.streammanager.exporters.base import (
    AWS_ERRORS,
    ExportAttempt,
    ExporterSettings,
    ExportTarget,
    StatusSink,
    aws_client,
)
from edgeml.twin.device.streammanager.exporters.refusals import service_refusal
from edgeml.twin.device.streammanager.store.records import StoredMessage

_transfer: Any = importlib.import_module("boto3.s3.transfer")  # untyped, like boto3 itself
_boto3_exceptions: Any = importlib.import_module("boto3.exceptions")
# upload_file raises boto3's S3UploadFailedError (a Boto3Error) for an error response of S3
_UPLOAD_ERRORS: tuple[type[Exception], ...] = (*AWS_ERRORS, _boto3_exceptions.Boto3Error, OSError)
DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024
_KEY_TEMPLATE = re.compile(r"!\{timestamp:([a-zA-Z/]+)\}")
_DATE_FIELDS = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


class InvalidTask(ValueError):
    """A message that is not a usable S3 export task."""


def expand_key(key: str, epoch_s: float) -> str:
    """Replaces `!{timestamp:yyyy/MM/dd/HH}`-style placeholders with the UTC time of the upload."""

    def render(match: re.Match[str]) -> str:
        pattern = match.group(1)
        for java, strftime in _DATE_FIELDS:
            pattern = pattern.replace(java, strftime)
        return time.strftime(pattern, time.gmtime(epoch_s))

    return _KEY_TEMPLATE.sub(render, key)


def parse_task(payload: bytes) -> Any:
    """The S3ExportTaskDefinition in a message, validated as the SDK validates it."""
    try:
        task = sm.S3ExportTaskDefinition.from_dict(json.loads(payload))
    except Exception as error:
        raise InvalidTask(f"message is not an S3ExportTaskDefinition: {error}") from error
    problem = UtilInternal.is_invalid(task)
    if problem:
        raise InvalidTask(f"invalid S3ExportTaskDefinition: {problem}")
    return task


def local_path(input_url: str) -> Path:
    parsed = urlparse(input_url)
    if parsed.scheme != "file":
        raise InvalidTask(f"inputUrl must be a file:// URL, got {input_url!r}")
    path = Path(unquote(parsed.path))
    if not path.is_file():
        raise InvalidTask(f"input file {path} does not exist")
    return path


class S3Target(ExportTarget):
    """Uploads the files named by task messages, one task at a time, in stream order."""

    def __init__(self, config: Any, stream_name: str, status_sink: StatusSink) -> None:
        super().__init__(ExporterSettings.from_config(config, default_batch_size=1))
        self.stream_name = stream_name
        self.status_config = config.status_config
        self.multipart_threshold: int = (
            config.size_threshold_for_multipart_upload_bytes or DEFAULT_MULTIPART_THRESHOLD
        )
        self._status_sink = status_sink
        self._client: Any = None

    def export(self, messages: list[StoredMessage]) -> ExportAttempt:
        for index, message in enumerate(messages):
            error = self._run_task(message)
            if error is not None:
                return ExportAttempt(list(messages[index:]), error)
        return ExportAttempt()

    def _run_task(self, message: StoredMessage) -> str | None:
        """Runs one task; returns an error message when it should be retried."""
        try:
            task = parse_task(message.payload)
            path = local_path(task.input_url)
        except InvalidTask as error:
            self._report(message, None, sm.Status.Failure, sm.StatusLevel.ERROR, str(error))
            return None
        self._report(message, task, sm.Status.InProgress, sm.StatusLevel.INFO, "upload started")
        key = expand_key(task.key, time.time())
        try:
            if self._client is None:
                self._client = aws_client("s3")
            extra = (
                {"Metadata": {str(k): str(v) for k, v in task.user_metadata.items()}}
                if task.user_metadata
                else None
            )
            self._client.upload_file(
                str(path),
                task.bucket,
                key,
                ExtraArgs=extra,
                Config=_transfer.TransferConfig(
                    multipart_threshold=self.multipart_threshold, use_threads=False
                ),
            )
        except _UPLOAD_ERRORS as error:
            target = f"upload of {path} to s3://{task.bucket}/{key}"
            refusal = service_refusal(error)
            if refusal is not None:
                self._report(
                    message, task, sm.Status.Failure, sm.StatusLevel.ERROR, f"{target} failed: {refusal}"
                )
                return None
            self._report(
                message, task, sm.Status.Warning, sm.StatusLevel.WARN, f"upload failed, retrying: {error}"
            )
            return f"{target} failed: {error}"
        self._report(
            message, task, sm.Status.Success, sm.StatusLevel.INFO, f"uploaded to s3://{task.bucket}/{key}"
        )
        return None

    def _report(self, message: StoredMessage, task: Any, status: Any, level: Any, text: str) -> None:
        config = self.status_config
        if config is None or not config.status_stream_name:
            return
        wanted = config.status_level if config.status_level is not None else sm.StatusLevel.INFO
        if level.value > wanted.value:
            return
        status_message = sm.StatusMessage(
            event_type=sm.EventType.S3Task,
            status_level=level,
            status=status,
            status_context=sm.StatusContext(
                s3_export_task_definition=task,
                export_identifier=self.settings.identifier,
                stream_name=self.stream_name,
                sequence_number=message.sequence_number,
            ),
            message=text,
            timestamp_epoch_ms=int(time.time() * 1000),
        )
        self._status_sink(
            config.status_stream_name, Util.validate_and_serialize_to_json_bytes(status_message)
        )
