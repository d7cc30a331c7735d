"""Helpers for the cloud twin tests: the endpoint in-process on a thread, boto3 clients pointed at it,
raw SigV4-signed HTTP, and a small recording backend (for the protocol layer's own tests; the product's
control plane is tested through the same endpoint in the end-to-end tests)."""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import boto3
import typer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from edgeml.cli import run_app
from edgeml.deploy.cli import register
from edgeml.twin.cloud.endpoint import CloudEndpoint, ControlPlaneFactory
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.protocol.model import twin_botocore_session
from edgeml.twin.cloud.service import ServiceError

REGION = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"]
ACCOUNT = "123456789012"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
UNCHECKED = Config(retries={"total_max_attempts": 1}, parameter_validation=False)


def run_deploy(*args: str) -> int:
    """`edgeml deploy ARGS...` as a user runs it (the CLI's own error handling included); its exit code."""
    app = typer.Typer()
    register(app)
    with mock.patch.object(sys, "argv", ["edgeml", "deploy", *args]):
        try:
            run_app(app)
        except SystemExit as exited:
            return int(exited.code or 0)
    return 0


def client(endpoint: CloudEndpoint, service: str, config: Config = NO_RETRIES) -> Any:
    """A plain boto3 client; its session also loads the twin's supplementary greengrassv2-data operations
    (protocol/models), so `greengrassv2` clients have list_thing_groups_for_core_device too."""
    session = boto3.session.Session(botocore_session=twin_botocore_session())
    return session.client(
        service,
        endpoint_url=endpoint.endpoint_url,
        region_name=REGION,
        aws_access_key_id=TWIN_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=TWIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=TWIN_CREDENTIALS["AWS_SESSION_TOKEN"],
        config=config,
    )


def client_error_code(error: Any) -> tuple[str, int]:
    """The error code and HTTP status of a botocore ClientError (or pytest's ExceptionInfo of one)."""
    response = getattr(error, "value", error).response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def signed(
    endpoint: CloudEndpoint, service: str, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP request signed with SigV4 for `service` (what any SDK sends), answered as-is."""
    url = endpoint.endpoint_url + path
    request = AWSRequest(
        method=method, url=url, data=body, headers={"Content-Type": "application/json", **headers}
    )
    credentials = Credentials(
        TWIN_CREDENTIALS["AWS_ACCESS_KEY_ID"], TWIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    )
    SigV4Auth(credentials, service, REGION).add_auth(request)
    parts = urlsplit(endpoint.endpoint_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=dict(request.headers.items()))
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def error_of(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    assert isinstance(document, dict)
    return document


class RecordingGreengrass:
    """A few GreengrassV2 operations, each call recorded; some inputs answer the errors a test needs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.deployments: dict[str, dict[str, Any]] = {}

    def create_deployment(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("create_deployment", params))
        deployment_id = f"d-{len(self.deployments) + 1}"
        self.deployments[deployment_id] = params
        job = f"gg-{deployment_id}"
        return {
            "deploymentId": deployment_id,
            "iotJobId": job,
            "iotJobArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{job}",
        }

    def get_deployment(self, deploymentId: str) -> dict[str, Any]:
        self.calls.append(("get_deployment", {"deploymentId": deploymentId}))
        if deploymentId == "quota":
            raise ServiceError(
                "ServiceQuotaExceededException", "too many", {"quotaCode": "q-1", "serviceCode": "gg"}
            )
        if deploymentId == "busy":
            raise ServiceError("ThrottlingException", "slow down", {"retryAfterSeconds": 7})
        if deploymentId == "conflict":
            raise ServiceError(
                "ConflictException", "in use", {"resourceId": "conflict", "resourceType": "Deployment"}
            )
        if deploymentId == "malformed":
            return {"deploymentId": deploymentId, "notAMember": 1}
        if deploymentId not in self.deployments:
            raise ServiceError(
                "ResourceNotFoundException",
                f"no deployment {deploymentId}",
                {"resourceId": deploymentId, "resourceType": "Deployment"},
            )
        params = self.deployments[deploymentId]
        return {
            "deploymentId": deploymentId,
            "targetArn": params["targetArn"],
            "components": params.get("components", {}),
            "creationTimestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "isLatestForTarget": True,
        }

    def list_deployments(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("list_deployments", params))
        return {
            "deployments": [
                {"deploymentId": key, "targetArn": value["targetArn"]}
                for key, value in self.deployments.items()
            ]
        }

    def delete_deployment(self, deploymentId: str) -> dict[str, Any]:
        self.calls.append(("delete_deployment", {"deploymentId": deploymentId}))
        self.deployments.pop(deploymentId, None)
        return {}

    def get_component_version_artifact(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("get_component_version_artifact", params))
        return {"preSignedUrl": f"https://example.invalid/{params['artifactName']}"}

    def create_component_version(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("create_component_version", params))
        return {
            "componentName": "com.example.Hello",
            "componentVersion": "1.0.0",
            "creationTimestamp": datetime(2026, 1, 2, tzinfo=UTC),
            "status": {"componentState": "REQUESTED", "message": "NONE", "errors": {}},
        }


class RecordingJobs:
    """IoT job operations for jobs whose id starts with `gg-` (the deployments' jobs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def owns_job(self, job_id: str) -> bool:
        return job_id.startswith("gg-")

    def describe_job(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("describe_job", params))
        return {"job": {"jobId": params["jobId"], "status": "IN_PROGRESS", "targetSelection": "CONTINUOUS"}}

    def list_job_executions_for_thing(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("list_job_executions_for_thing", params))
        return {"executionSummaries": [{"jobId": "gg-d-1", "jobExecutionSummary": {"status": "QUEUED"}}]}


class RecordingJobsData:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_pending_job_executions(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("get_pending_job_executions", params))
        return {"queuedJobs": [{"jobId": "gg-d-1", "queuedAt": 1, "versionNumber": 1, "executionNumber": 1}]}


class RecordingControlPlane:
    def __init__(self) -> None:
        self.greengrassv2 = RecordingGreengrass()
        self.iot = RecordingJobs()
        self.jobs_data = RecordingJobsData()
        self.published: list[tuple[str, bytes, str]] = []
        self.saves = 0

    def on_iot_publish(self, topic: str, payload: bytes, region: str) -> None:
        self.published.append((topic, payload, region))

    def save(self) -> None:
        self.saves += 1

    def backend_calls(self) -> int:
        return len(self.greengrassv2.calls) + len(self.iot.calls) + len(self.jobs_data.calls)


@contextmanager
def endpoint_with(
    state_dir: Path, control_plane: ControlPlaneFactory | None = None, **options: Any
) -> Iterator[CloudEndpoint]:
    """The endpoint in-process on a thread (127.0.0.1, a free port), stopped on the way out. moto's state
    is not persisted by default here: moto is process-global and other tests share it."""
    options.setdefault("persist_moto", False)
    with CloudEndpoint(state_dir, control_plane=control_plane, **options) as endpoint:
        yield endpoint


# -- valid inputs generated from the model (the walk and the bad-input tests start from these) ----------

_COMPONENT = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:com.example.Walk"
EXAMPLE_STRINGS = {
    "TargetARN": f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/walk-fleet",
    "ThingGroupARN": f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/walk-fleet",
    "ComponentVersionARN": f"{_COMPONENT}:versions:1.0.0",
    "ComponentARN": _COMPONENT,
    "GenericV2ARN": _COMPONENT,
    "ClientTokenString": "walk-token-1",
    "UnsignedLongParameterValue": "1",
}


def example_value(shape: Any, *, required_only: bool, depth: int = 0) -> Any:
    """A value of `shape` that satisfies every constraint the model gives it."""
    kind = shape.type_name
    if kind == "structure":
        names = (
            list(shape.members)[:1]
            if shape.is_tagged_union
            else (shape.required_members if required_only or depth > 3 else list(shape.members))
        )
        return {
            name: example_value(shape.members[name], required_only=required_only, depth=depth + 1)
            for name in names
        }
    if kind == "list":
        return [example_value(shape.member, required_only=required_only, depth=depth + 1)]
    if kind == "map":
        key = example_value(shape.key, required_only=required_only, depth=depth + 1)
        return {key: example_value(shape.value, required_only=required_only, depth=depth + 1)}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        if shape.name in EXAMPLE_STRINGS:
            return EXAMPLE_STRINGS[shape.name]
        low = shape.metadata.get("min", 1) or 1
        return ("walk-" + "x" * low)[: max(low, min(shape.metadata.get("max", 16), 16))]
    if kind in ("integer", "long"):
        low = shape.metadata.get("min")
        return int(low) if low is not None else 1
    if kind in ("float", "double"):
        low = shape.metadata.get("min")
        return float(low) if low is not None else 1.0
    if kind == "boolean":
        return True
    if kind == "blob":
        return b'{"RecipeFormatVersion": "2020-01-25"}'
    if kind == "timestamp":
        return datetime(2026, 1, 1, tzinfo=UTC)
    raise AssertionError(f"no example for {shape.name} ({kind})")
