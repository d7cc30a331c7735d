"""GreengrassV2 and IoT error shapes the control plane raises (the codes and members of the real APIs)."""

from __future__ import annotations

from edgeml.twin.cloud.service import ServiceError, validation_error

__all__ = ["ServiceError", "conflict", "iot_invalid", "iot_not_found", "not_found", "validation_error"]


def not_found(message: str, resource_id: str, resource_type: str) -> ServiceError:
    return ServiceError(
        "ResourceNotFoundException", message, {"resourceId": resource_id, "resourceType": resource_type}
    )


def conflict(message: str, resource_id: str, resource_type: str) -> ServiceError:
    return ServiceError(
        "ConflictException", message, {"resourceId": resource_id, "resourceType": resource_type}
    )


def iot_not_found(message: str) -> ServiceError:
    """AWS IoT / IoT jobs data plane: ResourceNotFoundException (message only)."""
    return ServiceError("ResourceNotFoundException", message)


def iot_invalid(message: str) -> ServiceError:
    """AWS IoT / IoT jobs data plane: InvalidRequestException."""
    return ServiceError("InvalidRequestException", message)
