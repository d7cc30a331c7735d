"""`edgeml publish`: S3 and STS on the moto twin, GreengrassV2 through botocore's Stubber (real API model)."""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from edgeml.awsnames import InvalidAwsValue
from edgeml.components.build import build_project
from edgeml.components.errors import PublishFailed
from edgeml.components.publish import Clients, next_patch, publish_project
from edgeml.twin.cloud.motoserver import MotoServer

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
ARN = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:com.edgeml.Runtime"


class Captured:
    """Matches any value in Stubber's expected params and keeps it."""

    value: Any = None

    def __eq__(self, other: object) -> bool:
        self.value = other
        return True

    __hash__ = None  # type: ignore[assignment]


def _created(version: str, state: str = "REQUESTED", message: str = "Requested") -> dict[str, Any]:
    return {
        "arn": f"{ARN}:versions:{version}",
        "componentName": "com.edgeml.Runtime",
        "componentVersion": version,
        "creationTimestamp": datetime.datetime(2026, 11, 22, tzinfo=datetime.UTC),
        "status": {"componentState": state, "message": message, "errors": {}},
    }


@pytest.fixture()
def runtime(tmp_path: Path) -> Path:
    (tmp_path / "recipes").mkdir()
    shutil.copyfile(
        ROOT / "recipes" / "com.edgeml.Runtime.yaml", tmp_path / "recipes" / "com.edgeml.Runtime.yaml"
    )
    project = tmp_path / "components" / "com.edgeml.Runtime"
    shutil.copytree(
        ROOT / "components" / "com.edgeml.Runtime",
        project,
        symlinks=True,
        ignore=shutil.ignore_patterns("greengrass-build", "__pycache__"),
    )
    return project


@pytest.fixture()
def clients(aws: MotoServer) -> Iterator[tuple[Clients, Stubber]]:
    greengrass = boto3.client("greengrassv2", region_name=REGION)
    with Stubber(greengrass) as stubber:
        yield (
            Clients(
                s3=boto3.client("s3", region_name=REGION),
                greengrass=greengrass,
                sts=boto3.client("sts", region_name=REGION),
            ),
            stubber,
        )
        stubber.assert_no_pending_responses()


def test_next_patch_after_the_highest_published_version(
    runtime: Path, clients: tuple[Clients, Stubber]
) -> None:
    aws_clients, stubber = clients
    item = {"componentName": "com.edgeml.Runtime", "arn": ARN}
    stubber.add_response(
        "list_component_versions",
        {"componentVersions": [{**item, "componentVersion": "1.0.2"}], "nextToken": "page-2"},
        {"arn": ARN},
    )
    stubber.add_response(
        "list_component_versions",
        {
            "componentVersions": [
                {**item, "componentVersion": "1.0.9"},
                {**item, "componentVersion": "1.0.10"},
            ]
        },
        {"arn": ARN, "nextToken": "page-2"},
    )
    inline = Captured()
    stubber.add_response("create_component_version", _created("1.0.11"), {"inlineRecipe": inline})

    result = publish_project(runtime, bucket="edgeml-publish-next", clients=aws_clients)

    assert (result.version, result.state) == ("1.0.11", "REQUESTED")
    key = "com.edgeml.Runtime/1.0.11/com.edgeml.Runtime.zip"
    assert result.artifact_uris == (f"s3://edgeml-publish-next/{key}",)
    uploaded = aws_clients.s3.get_object(Bucket="edgeml-publish-next", Key=key)["Body"].read()
    built = (
        runtime
        / "greengrass-build"
        / "artifacts"
        / "com.edgeml.Runtime"
        / "NEXT_PATCH"
        / "com.edgeml.Runtime.zip"
    )
    assert uploaded == built.read_bytes()

    recipe = yaml.safe_load(inline.value)
    assert inline.value == result.recipe.read_bytes()
    assert result.recipe.name == "com.edgeml.Runtime-1.0.11.yaml"
    assert recipe["ComponentVersion"] == "1.0.11"
    assert {a["Uri"] for m in recipe["Manifests"] for a in m["Artifacts"]} == {
        f"s3://edgeml-publish-next/{key}"
    }


def test_first_version_and_gdks_default_bucket(runtime: Path, clients: tuple[Clients, Stubber]) -> None:
    aws_clients, stubber = clients
    stubber.add_client_error(
        "list_component_versions",
        "ResourceNotFoundException",
        "no such component",
        404,
        expected_params={"arn": ARN},
    )
    stubber.add_response("create_component_version", _created("1.0.0"), {"inlineRecipe": Captured()})

    result = publish_project(runtime, clients=aws_clients)  # builds first: nothing was built

    assert result.version == "1.0.0"
    assert result.bucket == f"edgeml-artifacts-{REGION}-{ACCOUNT}"  # gdk: <bucket>-<region>-<account>
    listed = aws_clients.s3.list_objects_v2(Bucket=result.bucket, Prefix="com.edgeml.Runtime/1.0.0/")
    assert [o["Key"] for o in listed["Contents"]] == ["com.edgeml.Runtime/1.0.0/com.edgeml.Runtime.zip"]


def _fix_version(runtime: Path, version: str) -> None:
    config = json.loads((runtime / "gdk-config.json").read_text())
    config["component"]["com.edgeml.Runtime"]["version"] = version
    (runtime / "gdk-config.json").write_text(json.dumps(config))
    build_project(runtime)


def test_a_fixed_version_that_exists_is_refused_before_any_upload(
    runtime: Path, clients: tuple[Clients, Stubber]
) -> None:
    # gdk 1.6.2 uploads first and then fails on CreateComponentVersion; the overwritten artifact no
    # longer matches the existing version's digests (devices: ARTIFACT_CHECKSUM_MISMATCH, gdk #300).
    aws_clients, stubber = clients
    _fix_version(runtime, "1.0.4")
    item = {"componentName": "com.edgeml.Runtime", "arn": ARN}
    stubber.add_response(
        "list_component_versions",
        {"componentVersions": [{**item, "componentVersion": v} for v in ("1.0.4", "1.0.3")]},
        {"arn": ARN},
    )
    aws_clients.s3.create_bucket(Bucket="edgeml-publish-exists")
    with pytest.raises(PublishFailed) as raised:
        publish_project(runtime, bucket="edgeml-publish-exists", clients=aws_clients)
    assert str(raised.value).startswith("com.edgeml.Runtime 1.0.4 already exists in GreengrassV2")
    assert "nothing was uploaded" in str(raised.value)
    assert aws_clients.s3.list_objects_v2(Bucket="edgeml-publish-exists")["KeyCount"] == 0


def test_a_new_fixed_version_is_published_as_is_and_a_late_conflict_is_one_line(
    runtime: Path, clients: tuple[Clients, Stubber]
) -> None:
    aws_clients, stubber = clients
    _fix_version(runtime, "1.0.4")
    stubber.add_response("list_component_versions", {"componentVersions": []}, {"arn": ARN})
    stubber.add_client_error(
        "create_component_version",
        "ConflictException",
        "com.edgeml.Runtime 1.0.4 already exists",
        409,
        expected_params={"inlineRecipe": Captured()},
    )
    with pytest.raises(PublishFailed) as raised:
        publish_project(runtime, bucket="edgeml-publish-fixed", clients=aws_clients)
    assert str(raised.value) == (
        "com.edgeml.Runtime: CreateComponentVersion failed: ConflictException: "
        "com.edgeml.Runtime 1.0.4 already exists"
    )
    assert aws_clients.s3.head_object(
        Bucket="edgeml-publish-fixed", Key="com.edgeml.Runtime/1.0.4/com.edgeml.Runtime.zip"
    )


def test_an_endpoint_without_greengrassv2_is_named_in_one_line(runtime: Path, aws: MotoServer) -> None:
    # Plain moto serves S3 and STS but no GreengrassV2: its HTML 404 page must not reach the user.
    with pytest.raises(PublishFailed) as raised:
        publish_project(runtime, bucket="edgeml-publish-noapi", region=REGION)
    message = str(raised.value)
    assert "\n" not in message and "<" not in message
    assert message.startswith(f"{aws.endpoint_url} has no GreengrassV2 API (ListComponentVersions answered")
    s3 = boto3.client("s3", region_name=REGION)
    assert "edgeml-publish-noapi" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


@pytest.mark.parametrize(
    ("bucket", "problem"),
    [("Edgeml_Bucket", "may hold only lowercase"), ("ab", "must be 3 to 63 characters")],
)
def test_a_bad_bucket_name_is_refused_before_any_call(
    runtime: Path, clients: tuple[Clients, Stubber], bucket: str, problem: str
) -> None:
    aws_clients, _ = clients  # the Stubber has no responses: any GreengrassV2 call would fail the test
    with pytest.raises(InvalidAwsValue, match=f"^--bucket '{bucket}': not a valid S3 bucket name: {problem}"):
        publish_project(runtime, bucket=bucket, clients=aws_clients)
    assert not (runtime / "greengrass-build").exists()


def test_no_region_anywhere_is_one_line(runtime: Path, clients: tuple[Clients, Stubber]) -> None:
    aws_clients, _ = clients
    config = json.loads((runtime / "gdk-config.json").read_text())
    del config["component"]["com.edgeml.Runtime"]["publish"]["region"]  # gdk accepts it: --region then
    (runtime / "gdk-config.json").write_text(json.dumps(config))
    with pytest.raises(PublishFailed, match=r"^com\.edgeml\.Runtime: no Region: pass --region or set"):
        publish_project(runtime, bucket="edgeml-publish-region", clients=aws_clients)


def test_a_failed_component_version_is_an_error(runtime: Path, clients: tuple[Clients, Stubber]) -> None:
    aws_clients, stubber = clients
    stubber.add_response("list_component_versions", {"componentVersions": []}, {"arn": ARN})
    stubber.add_response(
        "create_component_version",
        _created("1.0.0", state="FAILED", message="artifact not accessible"),
        {"inlineRecipe": Captured()},
    )
    with pytest.raises(
        PublishFailed, match=r"com\.edgeml\.Runtime 1\.0\.0: component version FAILED: artifact not"
    ):
        publish_project(runtime, bucket="edgeml-publish-failed", clients=aws_clients)


def test_next_patch() -> None:
    assert next_patch([]) == "1.0.0"
    assert next_patch(["1.0.9", "1.0.10", "0.9.0", "not-a-version"]) == "1.0.11"
    assert next_patch(["2.3.4-rc.1"]) == "2.3.5"


def test_a_custom_build_publishes_the_version_it_staged(
    tmp_path: Path, clients: tuple[Clients, Stubber]
) -> None:
    # Like the model component: the build hook stages a real version with its own artifact URIs.
    aws_clients, stubber = clients
    project = tmp_path / "components" / "Model"
    project.mkdir(parents=True)
    config = {
        "component": {
            "com.example.model.M": {
                "author": "edgeml",
                "version": "NEXT_PATCH",
                "build": {"build_system": "custom", "custom_build_command": ["python3", "stage.py"]},
                "publish": {"bucket": "edgeml-artifacts", "region": REGION},
            }
        },
        "gdk_version": "1.6.2",
    }
    (project / "gdk-config.json").write_text(json.dumps(config))
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "com.example.model.M",
        "ComponentVersion": "1.2.3",
        "Manifests": [
            {
                "Platform": {"os": "linux", "architecture": "amd64"},
                "Artifacts": [
                    {
                        "Uri": "s3://edgeml-artifacts/com.example.model.M/1.2.3/linux-amd64.zip",
                        "Unarchive": "ZIP",
                        "Digest": "abc=",
                        "Algorithm": "SHA-256",
                    }
                ],
            }
        ],
    }
    (project / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    (project / "stage.py").write_text(
        "import pathlib, shutil\n"
        "b = pathlib.Path('greengrass-build')\n"
        "shutil.copyfile('recipe.yaml', b / 'recipes' / 'com.example.model.M-1.2.3.yaml')\n"
        "(b / 'artifacts/com.example.model.M/1.2.3').mkdir(parents=True)\n"
        "(b / 'artifacts/com.example.model.M/1.2.3/linux-amd64.zip').write_bytes(b'model')\n"
    )
    inline = Captured()
    created = {**_created("1.2.3"), "componentName": "com.example.model.M"}
    model_arn = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:com.example.model.M"
    item = {"componentName": "com.example.model.M", "arn": model_arn, "componentVersion": "1.2.2"}
    stubber.add_response("list_component_versions", {"componentVersions": [item]}, {"arn": model_arn})
    stubber.add_response("create_component_version", created, {"inlineRecipe": inline})

    result = publish_project(project, bucket="edgeml-publish-custom", clients=aws_clients)

    assert result.version == "1.2.3"  # the staged version, not the next patch after 1.2.2
    published = yaml.safe_load(inline.value)
    [artifact] = published["Manifests"][0]["Artifacts"]
    assert artifact["Uri"] == "s3://edgeml-publish-custom/com.example.model.M/1.2.3/linux-amd64.zip"
    assert artifact["Digest"] == "abc="
    body = aws_clients.s3.get_object(
        Bucket="edgeml-publish-custom", Key="com.example.model.M/1.2.3/linux-amd64.zip"
    )
    assert body["Body"].read() == b"model"
