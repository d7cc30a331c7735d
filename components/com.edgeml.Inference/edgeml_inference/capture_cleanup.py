"""Deletes captured inputs once Stream Manager reports them exported to S3.

The capture stream's S3 export executor writes a StatusMessage per task to its status stream
(StatusConfig, level INFO); `Success` means the file is in S3, so its local copy goes and its bytes leave
the disk budget (CaptureDiskBudgetBytes stays the ceiling for what waits for export). Failure, Warning and
Canceled keep the file. Only files in the capture folder are deleted (the app wrote those).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from edgeml_inference.capture import LowConfidenceCapture

_log = logging.getLogger(__name__)
READ_TIMEOUT_MS = 1000
STATUS_SUFFIX = "Status"


def status_stream_of(capture_stream: str) -> str:
    """The status stream the app gives its capture stream's S3 export executor."""
    return f"{capture_stream}{STATUS_SUFFIX}" if capture_stream else ""


def exported_path(payload: bytes) -> Path | None:
    """The local file of a StatusMessage reporting an S3 export task's Success; None otherwise."""
    from stream_manager import Status, StatusMessage
    from stream_manager.util import Util

    try:
        status = Util.deserialize_json_bytes_to_obj(payload, StatusMessage)
    except Exception:
        return None
    context = status.status_context
    task = context.s3_export_task_definition if context is not None else None
    if status.status != Status.Success or task is None or not task.input_url:
        return None
    url = urlparse(task.input_url)
    return Path(unquote(url.path)) if url.scheme == "file" else None


class ExportedCaptureCleaner:
    """Follows the status stream `stream()` names (live configuration) on its own thread."""

    def __init__(self, client: Any, stream: Callable[[], str], capture: LowConfidenceCapture) -> None:
        self.client = client
        self.stream = stream
        self.capture = capture
        self.removed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="capture-cleanup", daemon=True)

    def start(self) -> ExportedCaptureCleaner:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 0.1) -> None:
        """Stops following; does not wait out a read in progress (a daemon thread: closing the client
        ends it), so a SIGTERM is not held up by up to READ_TIMEOUT_MS."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _loop(self) -> None:
        from stream_manager import NotEnoughMessagesException, ReadMessagesOptions

        followed, next_sequence = "", 0
        while not self._stop.is_set():
            name = self.stream()
            if not name:
                self._stop.wait(1.0)
                continue
            if name != followed:
                followed, next_sequence = name, 0
            try:
                messages = self.client.read_messages(
                    name,
                    ReadMessagesOptions(
                        desired_start_sequence_number=next_sequence,
                        min_message_count=1,
                        max_message_count=100,
                        read_timeout_millis=READ_TIMEOUT_MS,
                    ),
                )
            except NotEnoughMessagesException:
                continue
            except Exception as error:  # stream not there yet, oldest data trimmed, client closing
                if self._stop.is_set():
                    return
                _log.debug("capture status stream %s: %s", name, error)
                next_sequence = self._oldest(name, next_sequence)
                self._stop.wait(1.0)
                continue
            for message in messages:
                next_sequence = message.sequence_number + 1
                path = exported_path(bytes(message.payload))
                if path is not None and self.capture.remove_exported(path):
                    self.removed += 1

    def _oldest(self, name: str, current: int) -> int:
        """After a read error: the oldest sequence number still in the stream, if past `current`."""
        try:
            oldest = self.client.describe_message_stream(name).storage_status.oldest_sequence_number
        except Exception:
            return current
        return max(current, int(oldest or 0))
