"""The Greengrass IPC operations the app uses, behind one small interface.

`IpcClient` is what the app's core depends on; `SdkIpcClient` implements it with the unmodified
`GreengrassCoreIPCClientV2`, which finds the nucleus through
AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT and SVCUID.
Tests may pass any object with the same methods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

_log = logging.getLogger(__name__)


class IpcClient(Protocol):
    """The subset of Greengrass IPC the inference app calls."""

    def get_configuration(self) -> dict[str, Any]: ...

    def subscribe_to_configuration_update(self, on_update: Callable[[], None]) -> None: ...

    def subscribe_to_validate_configuration_updates(
        self, on_validate: Callable[[str, dict[str, Any]], None]
    ) -> None: ...

    def send_configuration_validity_report(
        self, deployment_id: str, accepted: bool, message: str
    ) -> None: ...

    def publish_to_topic(self, topic: str, payload: bytes) -> None: ...

    def publish_to_iot_core(self, topic: str, payload: bytes, qos: int) -> None: ...

    def subscribe_to_topic(self, topic: str, on_message: Callable[[bytes], None]) -> Callable[[], None]: ...

    def update_state(self, state: str) -> None: ...

    def subscribe_to_component_updates(
        self, on_pre_update: Callable[[str], None], on_post_update: Callable[[str], None]
    ) -> None: ...

    def defer_component_update(self, deployment_id: str, recheck_after_ms: int, message: str) -> None: ...

    def close(self) -> None: ...


class SdkIpcClient:
    """`IpcClient` over awsiotsdk's GreengrassCoreIPCClientV2."""

    def __init__(self, client: Any = None) -> None:
        from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

        self.client: Any = client if client is not None else GreengrassCoreIPCClientV2()
        self._operations: list[Any] = []

    def get_configuration(self) -> dict[str, Any]:
        response = self.client.get_configuration(key_path=[])
        value = response.value or {}
        return dict(value)

    def get_component_configuration(self, component: str, key_path: list[str]) -> dict[str, Any]:
        """Another component's configuration (e.g. aws.greengrass.StreamManager's port)."""
        response = self.client.get_configuration(component_name=component, key_path=key_path)
        return dict(response.value or {})

    def subscribe_to_configuration_update(self, on_update: Callable[[], None]) -> None:
        def handler(_event: Any) -> None:
            _guard(on_update)

        _, operation = self.client.subscribe_to_configuration_update(
            key_path=[], on_stream_event=handler, on_stream_error=_stream_error
        )
        self._operations.append(operation)

    def subscribe_to_validate_configuration_updates(
        self, on_validate: Callable[[str, dict[str, Any]], None]
    ) -> None:
        def handler(event: Any) -> None:
            update = event.validate_configuration_update_event
            if update is not None:
                _guard(on_validate, update.deployment_id or "", dict(update.configuration or {}))

        _, operation = self.client.subscribe_to_validate_configuration_updates(
            on_stream_event=handler, on_stream_error=_stream_error
        )
        self._operations.append(operation)

    def send_configuration_validity_report(self, deployment_id: str, accepted: bool, message: str) -> None:
        from awsiot.greengrasscoreipc.model import ConfigurationValidityReport, ConfigurationValidityStatus

        status = ConfigurationValidityStatus.ACCEPTED if accepted else ConfigurationValidityStatus.REJECTED
        report = ConfigurationValidityReport(status=status, deployment_id=deployment_id, message=message)
        self.client.send_configuration_validity_report(configuration_validity_report=report)

    def publish_to_topic(self, topic: str, payload: bytes) -> None:
        from awsiot.greengrasscoreipc.model import BinaryMessage, PublishMessage

        message = PublishMessage(binary_message=BinaryMessage(message=payload))
        self.client.publish_to_topic(topic=topic, publish_message=message)

    def publish_to_iot_core(self, topic: str, payload: bytes, qos: int) -> None:
        from awsiot.greengrasscoreipc.model import QOS

        self.client.publish_to_iot_core(
            topic_name=topic, qos=QOS.AT_LEAST_ONCE if qos else QOS.AT_MOST_ONCE, payload=payload
        )

    def subscribe_to_topic(self, topic: str, on_message: Callable[[bytes], None]) -> Callable[[], None]:
        def handler(event: Any) -> None:
            if event.binary_message is not None:
                payload = bytes(event.binary_message.message or b"")
            elif event.json_message is not None:
                import json

                payload = json.dumps(event.json_message.message).encode("utf-8")
            else:
                return
            _guard(on_message, payload)

        _, operation = self.client.subscribe_to_topic(
            topic=topic, on_stream_event=handler, on_stream_error=_stream_error
        )
        self._operations.append(operation)
        return lambda: _close_quietly(operation)

    def update_state(self, state: str) -> None:
        self.client.update_state(state=state)

    def subscribe_to_component_updates(
        self, on_pre_update: Callable[[str], None], on_post_update: Callable[[str], None]
    ) -> None:
        def handler(event: Any) -> None:
            if event.pre_update_event is not None:
                _guard(on_pre_update, event.pre_update_event.deployment_id or "")
            elif event.post_update_event is not None:
                _guard(on_post_update, event.post_update_event.deployment_id or "")

        _, operation = self.client.subscribe_to_component_updates(
            on_stream_event=handler, on_stream_error=_stream_error
        )
        self._operations.append(operation)

    def defer_component_update(self, deployment_id: str, recheck_after_ms: int, message: str) -> None:
        self.client.defer_component_update(
            deployment_id=deployment_id, message=message, recheck_after_ms=recheck_after_ms
        )

    def close(self) -> None:
        for operation in self._operations:
            _close_quietly(operation)
        self._operations.clear()
        _close_quietly(self.client)


def _guard(callback: Callable[..., None], *args: Any) -> None:
    """Runs a handler; a failure is logged, never raised into the SDK's event thread."""
    try:
        callback(*args)
    except Exception:
        _log.exception("IPC event handler failed")


def _stream_error(error: Exception) -> bool:
    _log.warning("IPC stream error: %s", error)
    return False  # keep the stream open


# No on_stream_closed callbacks: awsiotsdk's GreengrassCoreIPCClientV2 submits them to its executor and,
# for a stream that closes after close() shut that executor down, re-raises the RuntimeError it means to
# ignore (clientv2.py `__create_stream_handler`: `if real_self.ignore_executor_exceptions: raise`), so
# every stop logged a traceback per subscription. Nothing here needs to know a stream closed.


def _close_quietly(closable: Any) -> None:
    try:
        closable.close()
    except Exception:
        _log.debug("close failed", exc_info=True)
