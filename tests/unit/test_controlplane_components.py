"""Component versions in the control plane: recipe checks, artifacts, digests, listing, data plane."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from controlplane_kit import BUCKET, REGION, Twin, started_twin

from edgeml.twin.cloud.controlplane import request_context
from edgeml.twin.cloud.service import ServiceError


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    yield from started_twin(tmp_path, monkeypatch)


def _recipe(**overrides: object) -> bytes:
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "com.example.A",
        "ComponentVersion": "1.0.0",
    }
    recipe.update(overrides)  # type: ignore[arg-type]
    return json.dumps({k: v for k, v in recipe.items() if v is not None}).encode()


def _error(call: object, **kwargs: object) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(**kwargs)  # type: ignore[operator]
    return caught.value


def test_new_version_is_requested_then_deployable_with_the_service_digest(twin: Twin) -> None:
    arn = twin.publish("com.example.A", "1.0.0", artifact=b"zip bytes")
    described = twin.gg.describe_component(arn=arn)
    assert described["status"]["componentState"] == "DEPLOYABLE"
    recipe = json.loads(twin.gg.get_component(arn=arn)["recipe"])
    artifact = recipe["Manifests"][0]["Artifacts"][0]
    assert artifact["Algorithm"] == "SHA-256"
    assert artifact["Digest"] == base64.b64encode(hashlib.sha256(b"zip bytes").digest()).decode()


def test_create_answers_requested_as_the_service_does(twin: Twin) -> None:
    out = twin.gg.create_component_version(inlineRecipe=_recipe())
    assert out["status"] == {"componentState": "REQUESTED", "message": "NONE", "errors": {}}
    assert out["arn"] == f"arn:aws:greengrass:{REGION}:123456789012:components:com.example.A:versions:1.0.0"


def test_yaml_recipe_with_unquoted_format_date_is_read_and_given_back_as_yaml(twin: Twin) -> None:
    text = "RecipeFormatVersion: 2020-01-25\nComponentName: com.example.Y\nComponentVersion: '2.1.0'\n"
    arn = twin.gg.create_component_version(inlineRecipe=text.encode())["arn"]
    got = twin.gg.get_component(arn=arn, recipeOutputFormat="YAML")
    assert got["recipeOutputFormat"] == "YAML"
    assert yaml.safe_load(got["recipe"])["ComponentVersion"] == "2.1.0"


@pytest.mark.parametrize(
    ("recipe", "words"),
    [
        (_recipe(RecipeFormatVersion="2021-01-01"), "RecipeFormatVersion"),
        (_recipe(ComponentVersion="1.0"), "ComponentVersion"),
        (_recipe(ComponentVersion="1000000.0.0"), "999999"),
        (_recipe(ComponentName=None), "ComponentName"),
        (_recipe(ComponentType="aws.greengrass.docker"), "ComponentType"),
        (_recipe(ComponentDependencies={"b": {"VersionRequirement": "newest"}}), "VersionRequirement"),
        (_recipe(ComponentDependencies={"b": {"DependencyType": "WEAK"}}), "DependencyType"),
        (b"{not json: [", "neither JSON nor YAML"),
        (b"- a list\n- not a map\n", "object"),
        (_recipe(ComponentDescription="x" * 16000), "16 kB"),
    ],
)
def test_bad_recipes_are_refused_naming_what_is_wrong(twin: Twin, recipe: bytes, words: str) -> None:
    error = _error(twin.gg.create_component_version, inlineRecipe=recipe)
    assert error.code == "ValidationException"
    assert words in error.message
    assert error.members["fields"][0]["name"] == "inlineRecipe"
    assert twin.gg.list_components()["components"] == []


def test_duplicate_version_is_a_conflict_and_keeps_the_first(twin: Twin) -> None:
    arn = twin.publish("com.example.A", "1.0.0", artifact=b"first")
    digest_before = json.loads(twin.gg.get_component(arn=arn)["recipe"])["Manifests"][0]["Artifacts"][0][
        "Digest"
    ]
    error = _error(twin.gg.create_component_version, inlineRecipe=_recipe())
    assert error.code == "ConflictException"
    assert "[com.example.A : 1.0.0]" in error.message and error.members["resourceId"] == arn
    with_tags = _error(twin.gg.create_component_version, inlineRecipe=_recipe(), tags={"a": "b"})
    assert with_tags.message.endswith("already exists and can't be created again with tags")
    digest_after = json.loads(twin.gg.get_component(arn=arn)["recipe"])["Manifests"][0]["Artifacts"][0][
        "Digest"
    ]
    assert digest_after == digest_before


def test_missing_artifact_is_refused_with_the_services_message(twin: Twin) -> None:
    uri = f"s3://{BUCKET}/nowhere.zip"
    manifests = [{"Artifacts": [{"Uri": uri}]}]
    error = _error(twin.gg.create_component_version, inlineRecipe=_recipe(Manifests=manifests))
    assert error.code == "ValidationException"
    assert error.message == (
        f"Invalid Input: Encountered following errors in Artifacts: {{{uri} = "
        "Specified artifact resource cannot be accessed}"
    )


def test_artifact_in_a_bucket_of_another_region_is_refused(twin: Twin) -> None:
    twin.s3.create_bucket(Bucket="eu-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    twin.s3.put_object(Bucket="eu-bucket", Key="a.zip", Body=b"x")
    manifests = [{"Artifacts": [{"Uri": "s3://eu-bucket/a.zip"}]}]
    error = _error(twin.gg.create_component_version, inlineRecipe=_recipe(Manifests=manifests))
    assert "s3://eu-bucket/a.zip = Specified artifact resource cannot be accessed" in error.message


def test_artifact_gone_before_processing_leaves_the_version_failed_with_its_error(twin: Twin) -> None:
    twin.s3.put_object(Bucket=BUCKET, Key="late.zip", Body=b"x")
    uri = f"s3://{BUCKET}/late.zip"
    arn = twin.gg.create_component_version(inlineRecipe=_recipe(Manifests=[{"Artifacts": [{"Uri": uri}]}]))[
        "arn"
    ]
    twin.s3.delete_object(Bucket=BUCKET, Key="late.zip")
    status = twin.gg.describe_component(arn=arn)["status"]
    assert status["componentState"] == "FAILED"
    assert status["errors"] == {uri: "Specified artifact resource cannot be accessed"}


def test_listing_shows_latest_versions_and_pages(twin: Twin) -> None:
    for version in ("1.0.0", "1.10.0", "1.2.0"):
        twin.publish("com.example.A", version, artifact=None)
    twin.publish("com.example.B", "0.1.0", artifact=None)
    listed = twin.gg.list_components(maxResults=1)
    assert [c["componentName"] for c in listed["components"]] == ["com.example.A"]
    assert listed["components"][0]["latestVersion"]["componentVersion"] == "1.10.0"
    rest = twin.gg.list_components(nextToken=listed["nextToken"])
    assert [c["componentName"] for c in rest["components"]] == ["com.example.B"] and "nextToken" not in rest
    versions = twin.gg.list_component_versions(arn=listed["components"][0]["arn"])
    assert [v["componentVersion"] for v in versions["componentVersions"]] == ["1.10.0", "1.2.0", "1.0.0"]


def test_public_components_are_listed_under_owner_aws_with_default_configuration(twin: Twin) -> None:
    names = {c["componentName"] for c in twin.gg.list_components(scope="PUBLIC")["components"]}
    assert {
        "aws.greengrass.Nucleus",
        "aws.greengrass.StreamManager",
        "aws.greengrass.TokenExchangeService",
    } <= names
    arn = f"arn:aws:greengrass:{REGION}:aws:components:aws.greengrass.StreamManager:versions:2.2.1"
    recipe = json.loads(twin.gg.get_component(arn=arn)["recipe"])
    assert recipe["ComponentConfiguration"]["DefaultConfiguration"]["STREAM_MANAGER_SERVER_PORT"] == "8088"
    assert _error(twin.gg.delete_component, arn=arn).code == "AccessDeniedException"


def test_delete_removes_the_version_and_unknown_arns_are_not_found(twin: Twin) -> None:
    arn = twin.publish("com.example.A", "1.0.0", artifact=None)
    assert twin.gg.delete_component(arn=arn) == {}
    assert _error(twin.gg.describe_component, arn=arn).code == "ResourceNotFoundException"
    assert _error(twin.gg.describe_component, arn="arn:aws:s3:::x").code == "ValidationException"


def _resolve(twin: Twin, requirement: str, arch: str = "amd64") -> str:
    out = twin.gg.resolve_component_candidates(
        platform={"name": "linux", "attributes": {"os": "linux", "architecture": arch}},
        componentCandidates=[
            {"componentName": "com.example.A", "versionRequirements": {"thing/t": requirement}}
        ],
    )
    return str(out["resolvedComponentVersions"][0]["componentVersion"])


def test_resolve_picks_the_highest_version_in_the_npm_range_for_the_platform(twin: Twin) -> None:
    for version in ("1.0.0", "1.4.0", "2.0.0"):
        twin.publish("com.example.A", version, artifact=None)
    twin.gg.create_component_version(
        inlineRecipe=_recipe(
            ComponentVersion="1.5.0", Manifests=[{"Platform": {"os": "linux", "architecture": "aarch64"}}]
        )
    )
    assert _resolve(twin, "^1.0.0") == "1.4.0"
    assert _resolve(twin, "^1.0.0", arch="aarch64") == "1.5.0"
    assert _resolve(twin, ">=1.0.0 <3.0.0") == "2.0.0"
    error = _error(_resolve, twin=twin, requirement=">=3.0.0")
    assert error.code == "ResourceNotFoundException" and "thing/t requires >=3.0.0" in error.message


def test_private_component_with_a_public_name_overrides_the_public_one(twin: Twin) -> None:
    twin.publish("aws.greengrass.Nucleus", "9.0.0", artifact=None)
    out = twin.gg.resolve_component_candidates(
        platform={"name": "linux", "attributes": {"os": "linux"}},
        componentCandidates=[{"componentName": "aws.greengrass.Nucleus", "versionRequirements": {}}],
    )
    assert out["resolvedComponentVersions"][0]["componentVersion"] == "9.0.0"


def test_artifact_url_is_presigned_for_the_endpoint_the_request_came_to(twin: Twin) -> None:
    arn = twin.publish("com.example.A", "1.0.0")
    with request_context(region=REGION, endpoint_url="http://127.0.0.1:4566"):
        url = twin.gg.get_component_version_artifact(
            arn=arn, artifactName=f"{BUCKET}/com.example.A/1.0.0/app.zip"
        )
    assert url["preSignedUrl"].startswith(f"http://127.0.0.1:4566/{BUCKET}/com.example.A/1.0.0/app.zip?")
    assert "X-Amz-Signature=" in url["preSignedUrl"]
    assert _error(twin.gg.get_component_version_artifact, arn=arn, artifactName="other.zip").code == (
        "ResourceNotFoundException"
    )


def test_versions_of_a_component_that_has_none_are_an_empty_list(twin: Twin) -> None:
    # gdk publish (NEXT_PATCH) lists the versions of a new component first and needs this answer
    arn = f"arn:aws:greengrass:{REGION}:123456789012:components:com.example.New"
    assert twin.gg.list_component_versions(arn=arn)["componentVersions"] == []
