"""KinesisConfig: batched PutRecords, a random UUID partition key per record (as Stream Manager does)."""

from __future__ import annotations

import uuid
from typing import Any

from edgeml.twin.device.streammanager.exporters.base import (
    AWS_ERRORS,
    ExportAttempt,
    ExporterSettings,
    ExportTarget,
    aws_client,
)
from edgeml.twin.device.streammanager.store.records import StoredMessage

DEFAULT_BATCH_SIZE = 500


class KinesisTarget(ExportTarget):
    """Puts each message's payload as one record of the Kinesis data stream; retries only failed records."""

    def __init__(self, config: Any) -> None:
        super().__init__(ExporterSettings.from_config(config, DEFAULT_BATCH_SIZE))
        self.stream_name: str = config.kinesis_stream_name
        self._client: Any = None

    def export(self, messages: list[StoredMessage]) -> ExportAttempt:
        try:
            if self._client is None:
                self._client = aws_client("kinesis")
            response = self._client.put_records(
                StreamName=self.stream_name,
                Records=[
                    {"Data": message.payload, "PartitionKey": str(uuid.uuid4())} for message in messages
                ],
            )
        except AWS_ERRORS as error:
            return ExportAttempt(list(messages), f"PutRecords to {self.stream_name} failed: {error}")
        failed = [
            (message, result)
            for message, result in zip(messages, response["Records"], strict=True)
            if result.get("ErrorCode")
        ]
        if not failed:
            return ExportAttempt()
        code, text = failed[0][1]["ErrorCode"], failed[0][1].get("ErrorMessage", "")
        return ExportAttempt(
            [message for message, _ in failed],
            f"{len(failed)} of {len(messages)} records rejected: {code} {text}",
        )
