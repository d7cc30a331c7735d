"""Bad requests that only the service's semantics can refuse (the model allows them), sent through plain
boto3 to the product endpoint (protocol layer + control plane): each is a 4xx of a real error shape with
a message, and leaves the twin's components, deployments and S3 objects as they were."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cloud_twin_harness import ACCOUNT, REGION, client, endpoint_with

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.protocol.model import service_model

ERROR_SHAPES = {shape.name for shape in service_model("greengrassv2").error_shapes}
SUFFIX = uuid.uuid4().hex[:6]
BUCKET = f"semantics-{SUFFIX}"
NAME = f"com.example.Semantics{SUFFIX}"


def _recipe(version: str, uri: str | None = None, **extra: Any) -> bytes:
    manifest: dict[str, Any] = {"Platform": {"os": "linux"}, "Lifecycle": {"Run": "true"}}
    if uri:
        manifest["Artifacts"] = [{"Uri": uri}]
    return json.dumps(
        {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": NAME,
            "ComponentVersion": version,
            "Manifests": [manifest],
            **extra,
        }
    ).encode()


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudEndpoint]:
    with endpoint_with(tmp_path_factory.mktemp("semantics")) as endpoint:
        client(endpoint, "s3").create_bucket(Bucket=BUCKET)
        client(endpoint, "s3").put_object(Bucket=BUCKET, Key="a.txt", Body=b"a")
        greengrass = client(endpoint, "greengrassv2")
        greengrass.create_component_version(inlineRecipe=_recipe("1.0.0", f"s3://{BUCKET}/a.txt"))
        client(endpoint, "iot").create_thing_group(thingGroupName=f"semantics-{SUFFIX}")
        yield endpoint


GROUP_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/semantics-{SUFFIX}"
CASES: dict[str, Callable[[Any], Any]] = {
    "recipe that is neither JSON nor YAML": lambda gg: gg.create_component_version(
        inlineRecipe=b"{: [ not yaml"
    ),
    "duplicate component version": lambda gg: gg.create_component_version(
        inlineRecipe=_recipe("1.0.0", f"s3://{BUCKET}/a.txt")
    ),
    "version that is not semver": lambda gg: gg.create_component_version(inlineRecipe=_recipe("one")),
    "recipe over 16 kB": lambda gg: gg.create_component_version(
        inlineRecipe=_recipe("9.0.0", ComponentDescription="x" * 17_000)
    ),
    "artifact object that does not exist": lambda gg: gg.create_component_version(
        inlineRecipe=_recipe("9.0.1", f"s3://{BUCKET}/missing.txt")
    ),
    "unknown component version in a deployment": lambda gg: gg.create_deployment(
        targetArn=GROUP_ARN, components={NAME: {"componentVersion": "7.7.7"}}
    ),
    "deployment to a thing group that does not exist": lambda gg: gg.create_deployment(
        targetArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/no-such-{SUFFIX}",
        components={NAME: {"componentVersion": "1.0.0"}},
    ),
    "configuration merge that is not JSON": lambda gg: gg.create_deployment(
        targetArn=GROUP_ARN,
        components={NAME: {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "{"}}},
    ),
    "unknown deployment": lambda gg: gg.get_deployment(deploymentId=str(uuid.uuid4())),
    "next token this API never returned": lambda gg: gg.list_components(nextToken="garbage"),
}


def _state(endpoint: CloudEndpoint) -> tuple[Any, ...]:
    greengrass = client(endpoint, "greengrassv2")
    components = greengrass.list_components(scope="PRIVATE")["components"]
    versions = [greengrass.list_component_versions(arn=c["arn"])["componentVersions"] for c in components]
    deployments = greengrass.list_deployments(historyFilter="ALL")["deployments"]
    objects = client(endpoint, "s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return (
        json.dumps(versions, default=str),
        json.dumps(deployments, default=str),
        [(o["Key"], o["ETag"]) for o in objects],
    )


@pytest.mark.parametrize("case", list(CASES))
def test_semantic_errors_are_4xx_service_errors_and_change_nothing(product, case):
    before = _state(product)
    with pytest.raises(ClientError) as raised:
        CASES[case](client(product, "greengrassv2"))
    response = raised.value.response
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    assert 400 <= status < 500, (case, status, response["Error"])
    assert response["Error"]["Code"] in ERROR_SHAPES
    assert response["Error"]["Message"]
    assert _state(product) == before
