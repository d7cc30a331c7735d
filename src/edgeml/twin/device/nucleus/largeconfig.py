"""The full deployment document of a LARGE_CONFIGURATION deployment: NUC deployment/
DeploymentDocumentDownloader.java (GetDeploymentConfiguration -> presigned URL, digest and algorithm;
a GET of the URL, at most 10 MB; the digest checked; the text read as the job document's format)."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from edgeml.twin.device.nucleus.errors import DeploymentError

MAX_DEPLOYMENT_DOCUMENT_SIZE_BYTES = 10 * 1024 * 1024  # DeploymentDocumentDownloader


def download_deployment_document(greengrass: Any, thing_name: str, deployment_id: str) -> dict[str, Any]:
    """The deployment's full device document. The nucleus retries download and digest failures without end;
    the twin fails the deployment with the nucleus's message instead of waiting forever."""
    try:
        answer = greengrass.get_deployment_configuration(
            deploymentId=deployment_id, coreDeviceThingName=thing_name
        )
    except (ClientError, BotoCoreError) as error:
        raise DeploymentError(f"Error while calling GetDeploymentConfiguration: {error}", []) from error
    url = answer.get("preSignedUrl") or ""
    check = answer.get("integrityCheck") or {}
    algorithm, digest = check.get("algorithm") or "", check.get("digest") or ""
    for name, value in (("preSignedUrl", url), ("algorithm", algorithm), ("digest", digest)):
        if not value:
            raise DeploymentError(f"{name} can't be null or blank", [])
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            size = response.headers.get("Content-Length")
            if size is not None and int(size) > MAX_DEPLOYMENT_DOCUMENT_SIZE_BYTES:
                raise DeploymentError(
                    "Requested deployment document exceeded size limit. The requested document is "
                    f"{size} bytes, but the size limit is {MAX_DEPLOYMENT_DOCUMENT_SIZE_BYTES} bytes",
                    [],
                )
            text: bytes = response.read()
    except (urllib.error.URLError, OSError) as error:
        raise DeploymentError(
            f"I/O error when making HTTP request with presigned url: {error}", []
        ) from error
    try:
        calculated = base64.b64encode(hashlib.new(algorithm.replace("-", ""), text).digest()).decode("ascii")
    except ValueError as error:
        raise DeploymentError(f"No security provider found for message digest {algorithm}", []) from error
    if calculated != digest:
        raise DeploymentError(
            "Integrity check failed because the calculated digest is different from provided digest.\n"
            f"Provided digest: '{digest}'. \nCalculated digest: '{calculated}'",
            [],
        )
    try:
        document: dict[str, Any] = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DeploymentError(f"Failed to deserialize deployment document: {error}", []) from error
    return document
