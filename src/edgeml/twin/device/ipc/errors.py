"""Failures of the IPC twin: local errors, and the modelled service errors that go back over the wire.

A modelled error is sent as an APPLICATION_ERROR whose `service-model-type` names the error shape
(e.g. `aws.greengrass#UnauthorizedError`); the unmodified client raises the matching class from
`awsiot.greengrasscoreipc.model`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from edgeml.errors import EdgemlError


class IpcTwinError(EdgemlError):
    """Base for errors raised by the Greengrass IPC twin itself."""


class FramingError(IpcTwinError):
    """Bytes on the socket are not a valid eventstream message (bad length, CRC or header)."""


class ProtocolViolation(IpcTwinError):
    """A well-framed message broke the eventstream RPC rules (missing header, wrong type, no CONNECT)."""


class ServerStartError(IpcTwinError):
    """The server could not bind its Unix socket."""


class UnknownComponentError(IpcTwinError):
    """A twin-side hook named a component that was never registered."""


class ModelledServiceError(IpcTwinError):
    """An error shape of the Greengrass IPC model, answered to the client as APPLICATION_ERROR."""

    model_name: ClassVar[str] = "aws.greengrass#ServiceError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def payload(self) -> dict[str, Any]:
        """The JSON body, as the shape's `_from_payload` in greengrasscoreipc/model.py reads it."""
        return {"message": self.message}


class ServiceError(ModelledServiceError):
    """The request was well formed but the twin could not serve it."""

    model_name = "aws.greengrass#ServiceError"


class UnauthorizedError(ModelledServiceError):
    """The component's accessControl does not allow this operation on this resource."""

    model_name = "aws.greengrass#UnauthorizedError"


class InvalidArgumentsError(ModelledServiceError):
    """A request field is missing or has a value the operation cannot take."""

    model_name = "aws.greengrass#InvalidArgumentsError"


class FailedUpdateConditionCheckError(ModelledServiceError):
    """UpdateConfiguration carried a timestamp older than the key's last update."""

    model_name = "aws.greengrass#FailedUpdateConditionCheckError"


class ResourceNotFoundError(ModelledServiceError):
    """A named component or configuration key does not exist."""

    model_name = "aws.greengrass#ResourceNotFoundError"

    def __init__(self, message: str, resource_type: str | None = None, resource_name: str | None = None):
        super().__init__(message)
        self.resource_type = resource_type
        self.resource_name = resource_name

    def payload(self) -> dict[str, Any]:
        body = super().payload()
        if self.resource_type is not None:
            body["resourceType"] = self.resource_type
        if self.resource_name is not None:
            body["resourceName"] = self.resource_name
        return body
