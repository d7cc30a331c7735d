"""Helpers for the nucleus twin tests: the cloud twin in-process, publishing a recipe through it with plain
boto3 (S3 artifact, CreateComponentVersion, wait DEPLOYABLE), device twins, waiting on states."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cloud_twin_harness import client, endpoint_with

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.device.nucleus import NucleusTwin
from edgeml.twin.device.nucleus.fleet import cloud_client, provision
from edgeml.twin.loopback import free_port, wait_for


@contextmanager
def cloud(state_dir: Path) -> Iterator[CloudEndpoint]:
    with endpoint_with(state_dir) as endpoint:
        yield endpoint


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def publish(
    endpoint: CloudEndpoint,
    recipe: Mapping[str, Any] | str,
    artifacts: Mapping[str, bytes] | None = None,
    bucket: str | None = None,
) -> str:
    """Uploads `artifacts` (key -> bytes), creates the component version; its ARN once DEPLOYABLE."""
    s3, greengrass = client(endpoint, "s3"), client(endpoint, "greengrassv2")
    if artifacts:
        assert bucket is not None
        if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=bucket)
        for object_key, body in artifacts.items():
            s3.put_object(Bucket=bucket, Key=object_key, Body=body)
    text = recipe if isinstance(recipe, str) else json.dumps(recipe)
    arn: str = greengrass.create_component_version(inlineRecipe=text.encode())["arn"]
    wait_for(
        lambda: greengrass.describe_component(arn=arn)["status"]["componentState"] == "DEPLOYABLE",
        f"{arn} to become DEPLOYABLE",
        timeout_s=10,
    )
    return arn


def device(endpoint: CloudEndpoint, root: Path, thing: str, groups: list[str], **options: Any) -> NucleusTwin:
    provision(endpoint.endpoint_url, thing, groups)
    options.setdefault("poll_s", 0.2)
    options.setdefault("port_map", {8088: free_port()})
    return NucleusTwin(root / thing, thing, endpoint.endpoint_url, **options)


def group_arn(endpoint: CloudEndpoint, group: str) -> str:
    arn: str = client(endpoint, "iot").describe_thing_group(thingGroupName=group)["thingGroupArn"]
    return arn


def deploy(endpoint: CloudEndpoint, target_arn: str, components: Mapping[str, Any], **extra: Any) -> str:
    created = client(endpoint, "greengrassv2").create_deployment(
        targetArn=target_arn,
        deploymentName=extra.pop("deploymentName", "test"),
        components=dict(components),
        **extra,
    )
    deployment_id: str = created["deploymentId"]
    return deployment_id


def outcome_of(twin: NucleusTwin, deployment_id: str, timeout_s: float = 60) -> Any:
    """The device's own outcome of a deployment, once it has one."""
    return wait_for(
        lambda: next((o for d, o in twin.outcomes if d == deployment_id), None),
        f"{twin.thing_name} to finish {deployment_id}",
        timeout_s=timeout_s,
    )


def job_details(endpoint: CloudEndpoint, job_id: str, thing: str) -> dict[str, Any]:
    execution = cloud_client("iot", endpoint.endpoint_url).describe_job_execution(
        jobId=job_id, thingName=thing
    )
    return dict(execution["execution"])


def wait_log(path: Path, text: str, timeout_s: float = 20) -> str:
    return wait_for(
        lambda: path.exists() and text in (content := path.read_text()) and content,
        f"{text!r} in {path.name}",
        timeout_s=timeout_s,
    )


def eventually(condition: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    return wait_for(condition, what, timeout_s=timeout_s)


def settle(seconds: float) -> None:
    time.sleep(seconds)


def recipe(
    name: str,
    version: str,
    lifecycle: Mapping[str, Any],
    *,
    dependencies: Mapping[str, tuple[str, str]] | None = None,
    configuration: Mapping[str, Any] | None = None,
    artifacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A recipe with one linux manifest; dependencies as name -> (VersionRequirement, DependencyType)."""
    document: dict[str, Any] = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentPublisher": "edgeml tests",
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Lifecycle": dict(lifecycle),
                **({"Artifacts": artifacts} if artifacts else {}),
            }
        ],
    }
    if dependencies:
        document["ComponentDependencies"] = {
            dep: {"VersionRequirement": requirement, "DependencyType": kind}
            for dep, (requirement, kind) in dependencies.items()
        }
    if configuration is not None:
        document["ComponentConfiguration"] = {"DefaultConfiguration": dict(configuration)}
    return document


def thing_arn(endpoint: CloudEndpoint, thing: str) -> str:
    arn: str = client(endpoint, "iot").describe_thing(thingName=thing)["thingArn"]
    return arn


@contextmanager
def one_device(
    tmp_path: Path, groups: list[str] | None = None, **options: Any
) -> Iterator[tuple[CloudEndpoint, NucleusTwin]]:
    """The cloud twin and one started device twin (in `groups`), both stopped on the way out."""
    with cloud(tmp_path / "cloud") as endpoint:
        twin = device(endpoint, tmp_path, unique("core-"), groups or [], **options)
        twin.start()
        try:
            yield endpoint, twin
        finally:
            twin.stop()
