"""IoTAnalyticsConfig: BatchPutMessage to a channel, message ids `<prefix><sequence number>`.

moto has no IoT Analytics backend (and this botocore may not carry the service model), so against the
twin's cloud this exporter keeps retrying and reports the reason in its ExportStatus error_message.
"""

from __future__ import annotations

from typing import Any

from edgeml.twin.device.streammanager.exporters.base import (
    AWS_ERRORS,
    ExportAttempt,
    ExporterSettings,
    ExportTarget,
    aws_client,
)
from edgeml.twin.device.streammanager.store.records import StoredMessage

DEFAULT_BATCH_SIZE = 100


class IoTAnalyticsTarget(ExportTarget):
    """Sends payloads to an IoT Analytics channel; entries the service rejects are retried."""

    def __init__(self, config: Any) -> None:
        super().__init__(ExporterSettings.from_config(config, DEFAULT_BATCH_SIZE))
        self.channel: str = config.iot_channel
        self.id_prefix: str = config.iot_msg_id_prefix or ""
        self._client: Any = None

    def export(self, messages: list[StoredMessage]) -> ExportAttempt:
        by_id = {f"{self.id_prefix}{message.sequence_number}": message for message in messages}
        try:
            if self._client is None:
                self._client = aws_client("iotanalytics")
            response = self._client.batch_put_message(
                channelName=self.channel,
                messages=[{"messageId": key, "payload": message.payload} for key, message in by_id.items()],
            )
        except AWS_ERRORS as error:
            return ExportAttempt(list(messages), f"IoT Analytics is not available here: {error}")
        errors = response.get("batchPutMessageErrorEntries", [])
        if not errors:
            return ExportAttempt()
        remaining = [by_id[entry["messageId"]] for entry in errors if entry.get("messageId") in by_id]
        return ExportAttempt(
            remaining, f"{len(errors)} messages rejected: {errors[0].get('errorMessage', '')}"
        )
