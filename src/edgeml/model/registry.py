"""Registers a packaged model component version in the SageMaker Model Registry (plain boto3).

One model package group per component (`edgeml-model-<Name>`), one model package per component
version. The registry entry is a record, not a deployable SageMaker model: the artifacts are the
component's per-platform zips, referenced in CustomerMetadataProperties with their metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edgeml.errors import EdgemlError
from edgeml.model.package import PackagedComponent
from edgeml.model.recipe import COMPONENT_PREFIX

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
_MISSING_GROUP_CODES = ("ValidationException", "ResourceNotFound", "ResourceNotFoundException")


class RegistryError(EdgemlError):
    """The Model Registry refused a call (other than the group not existing yet)."""


@dataclass(frozen=True)
class Registration:
    """Where a component version was registered."""

    group: str
    model_package_arn: str
    approval: str


def group_name(component: str) -> str:
    """Model package group of a component: com.edgeml.model.Digits -> edgeml-model-Digits."""
    return "edgeml-model-" + re.sub(r"[^a-zA-Z0-9-]+", "-", component.removeprefix(COMPONENT_PREFIX))


def customer_metadata(packaged: PackagedComponent) -> dict[str, str]:
    """Key facts as CustomerMetadataProperties (string values, at most 256 characters each)."""
    first = packaged.artifacts[0].metadata
    properties = {
        "component": packaged.component,
        "component_version": packaged.version,
        "source_sha256": first.source.sha256,
        "dataset_id": first.card.dataset_id,
        "created": first.card.created,
    }
    for artifact, ref in zip(packaged.artifacts, packaged.recipe.artifacts, strict=True):
        slot = artifact.platform.slot
        accuracy = artifact.variant.accuracy_top1
        properties[f"{slot}.target"] = artifact.variant.target
        properties[f"{slot}.accuracy_top1"] = "not measured" if accuracy is None else f"{accuracy:.4f}"
        properties[f"{slot}.artifact"] = ref.uri
        properties[f"{slot}.sha256"] = artifact.sha256
    return {key: value[:256] for key, value in properties.items()}


def _ensure_group(sagemaker: Any, group: str, component: str) -> None:
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        return
    except sagemaker.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in _MISSING_GROUP_CODES:
            raise RegistryError(f"Model Registry: describe group {group} failed ({code})") from error
    try:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=group,
            ModelPackageGroupDescription=f"Greengrass model component {component} (edgeml)",
        )
    except sagemaker.exceptions.ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise RegistryError(f"Model Registry: cannot create group {group}: {message}") from error


def register(
    sagemaker: Any, packaged: PackagedComponent, approval: str = "PendingManualApproval"
) -> Registration:
    """Creates the group if missing, then a model package for this component version."""
    if approval not in APPROVAL_STATUSES:
        raise RegistryError(f"--approval '{approval}': expected one of {', '.join(APPROVAL_STATUSES)}")
    group = group_name(packaged.component)
    _ensure_group(sagemaker, group, packaged.component)
    try:
        response = sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"{packaged.version}: {packaged.recipe.description}"[:1024],
            ModelApprovalStatus=approval,
            CustomerMetadataProperties=customer_metadata(packaged),
        )
    except sagemaker.exceptions.ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        raise RegistryError(
            f"Model Registry: cannot register {packaged.component} {packaged.version}: {message}"
        ) from error
    return Registration(group, str(response["ModelPackageArn"]), approval)
