"""Deployment errors with the nucleus's error codes and types (NUC deployment/errorcode/
DeploymentErrorCode.java, DeploymentErrorType.java, DeploymentErrorCodeUtils.java).

The job's statusDetails carry `deployment-error-stack`: DEPLOYMENT_FAILURE (or DEPLOYMENT_REJECTED) then
the codes along the cause chain, duplicates removed, order kept; `deployment-error-types`: the distinct
non-NONE types of those codes.
"""

from __future__ import annotations

from edgeml.errors import EdgemlError

# code -> type, for the codes this twin raises (DeploymentErrorCode.java)
ERROR_TYPES = {
    "DEPLOYMENT_FAILURE": "NONE",
    "DEPLOYMENT_REJECTED": "NONE",
    "REJECTED_STALE_DEPLOYMENT": "NONE",
    "NO_AVAILABLE_COMPONENT_VERSION": "NONE",
    "COMPONENT_VERSION_REQUIREMENTS_NOT_MET": "REQUEST_ERROR",
    "COMPONENT_CIRCULAR_DEPENDENCY_ERROR": "REQUEST_ERROR",
    "NUCLEUS_MISSING_REQUIRED_CAPABILITIES": "REQUEST_ERROR",
    "RESOURCE_NOT_FOUND": "REQUEST_ERROR",
    "ARTIFACT_DOWNLOAD_ERROR": "NONE",
    "ARTIFACT_CHECKSUM_MISMATCH": "COMPONENT_RECIPE_ERROR",
    "RECIPE_PARSE_ERROR": "COMPONENT_RECIPE_ERROR",
    "ARTIFACT_URI_NOT_VALID": "COMPONENT_RECIPE_ERROR",
    "COMPONENT_VERSION_NOT_VALID": "COMPONENT_RECIPE_ERROR",
    "S3_RESOURCE_NOT_FOUND": "DEPENDENCY_ERROR",
    "S3_ACCESS_DENIED": "PERMISSION_ERROR",
    "IO_UNZIP_ERROR": "DEVICE_ERROR",
    "COMPONENT_UPDATE_ERROR": "NONE",
    "COMPONENT_BROKEN": "NONE",
    "COMPONENT_CONFIGURATION_NOT_VALID": "NONE",
    "COMPONENT_BOOTSTRAP_ERROR": "NONE",
    "CLOUD_API_ERROR": "CLOUD_SERVICE_ERROR",
    "TWIN_UNSUPPORTED": "DEVICE_ERROR",
}
# codes whose type is decided by who published the component (DeploymentErrorCodeUtils.classifyComponentError)
COMPONENT_CODES = frozenset(
    {
        "COMPONENT_UPDATE_ERROR",
        "COMPONENT_BROKEN",
        "COMPONENT_CONFIGURATION_NOT_VALID",
        "COMPONENT_BOOTSTRAP_ERROR",
    }
)

SUCCESSFUL = "SUCCESSFUL"
FAILED_NO_STATE_CHANGE = "FAILED_NO_STATE_CHANGE"
FAILED_ROLLBACK_NOT_REQUESTED = "FAILED_ROLLBACK_NOT_REQUESTED"
FAILED_ROLLBACK_COMPLETE = "FAILED_ROLLBACK_COMPLETE"
FAILED_UNABLE_TO_ROLLBACK = "FAILED_UNABLE_TO_ROLLBACK"
REJECTED = "REJECTED"


class NucleusTwinError(EdgemlError):
    """The twin cannot do what a nucleus would (it fails loudly instead of pretending)."""


class DeploymentError(Exception):
    """A deployment failed; `codes` is the cause chain's error codes (most general first)."""

    def __init__(self, message: str, codes: list[str], component_owner: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.codes = codes
        self.component_owner = component_owner  # "aws" or an account, for component error types


def error_stack(codes: list[str], rejected: bool = False) -> list[str]:
    stack = ["DEPLOYMENT_REJECTED" if rejected else "DEPLOYMENT_FAILURE"]
    for code in codes:
        if code not in stack:
            stack.append(code)
    return stack


def error_types(codes: list[str], component_owner: str | None = None) -> list[str]:
    types: list[str] = []
    for code in codes:
        if code in COMPONENT_CODES:
            kind = (
                "AWS_COMPONENT_ERROR"
                if component_owner == "aws"
                else ("USER_COMPONENT_ERROR" if component_owner else "COMPONENT_ERROR")
            )
        else:
            kind = ERROR_TYPES.get(code, "UNKNOWN_ERROR")
        if kind != "NONE" and kind not in types:
            types.append(kind)
    return types
