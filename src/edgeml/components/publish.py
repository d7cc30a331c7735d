"""`edgeml publish`: what `gdk component publish` (1.6.2) does with a built component.

0. Checks locally first: a Region (--region or publish.region) and the bucket name (S3's rules).
1. Builds the component first when greengrass-build/ has no build of it.
2. Version: the built recipe's ComponentVersion when it is a semantic version; for NEXT_PATCH, the patch
   after the highest version GreengrassV2 ListComponentVersions returns for the component ARN (1.0.0
   when there is none). A version that already exists is refused here, before anything is uploaded:
   uploading first would overwrite the artifacts the existing version's digests were computed from,
   and devices would then fail with ARTIFACT_CHECKSUM_MISMATCH (gdk issue #300, which gdk 1.6.2 has).
   An endpoint that answers ListComponentVersions with a bare HTTP error (no AWS error shape, as plain
   moto does) has no GreengrassV2 API; that is said in one line.
3. Bucket: --bucket as given, else gdk-config's bucket + "-<region>-<account>" (gdk's rule); created
   when missing.
4. Uploads greengrass-build/artifacts/<Name>/<built version>/* to s3://<bucket>/<Name>/<version>/.
5. Writes greengrass-build/recipes/<Name>-<version>.<ext> with the version and the artifact URIs
   resolved, and calls CreateComponentVersion with it as the inline recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import semver
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from edgeml.awsnames import check_bucket_name
from edgeml.components.build import BuildResult, build_project, built_recipe, built_result
from edgeml.components.errors import PublishFailed
from edgeml.components.gdkconfig import NEXT_PATCH, GdkConfig, load_gdk_config
from edgeml.components.recipe import S3_PREFIX, get_key, set_key


@dataclass(frozen=True)
class PublishResult:
    """One published component version."""

    component: str
    version: str
    arn: str
    bucket: str
    recipe: Path
    artifact_uris: tuple[str, ...]
    state: str


@dataclass
class Clients:
    """The AWS clients publish uses; plain boto3 clients unless a caller passes its own."""

    s3: Any
    greengrass: Any
    sts: Any

    @classmethod
    def for_region(cls, region: str) -> Clients:
        return cls(
            s3=boto3.client("s3", region_name=region),
            greengrass=boto3.client("greengrassv2", region_name=region),
            sts=boto3.client("sts", region_name=region),
        )


def next_patch(versions: list[str]) -> str:
    """The patch after the highest semantic version in `versions`, or 1.0.0 when there is none."""
    parsed = [semver.Version.parse(v) for v in versions if semver.Version.is_valid(v)]
    if not parsed:
        return "1.0.0"
    highest = max(parsed)
    return f"{highest.major}.{highest.minor}.{highest.patch + 1}"


def component_arn(partition: str, region: str, account: str, component: str) -> str:
    """ARN of a component (all its versions), as ListComponentVersions takes it."""
    return f"arn:{partition}:greengrass:{region}:{account}:components:{component}"


def _no_greengrass_api(greengrass: Any, error: ClientError) -> PublishFailed | None:
    """The one-line error for an endpoint without the GreengrassV2 API, when `error` says so.

    A GreengrassV2 endpoint always answers with an AWS error shape (a code such as
    ResourceNotFoundException); botocore leaves the bare HTTP status as the code when the body is not
    one, e.g. the HTML 404 page of a server that has no such route.
    """
    code = str(error.response.get("Error", {}).get("Code", ""))
    if not code.isdigit():
        return None
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", code)
    return PublishFailed(
        f"{greengrass.meta.endpoint_url} has no GreengrassV2 API ({error.operation_name} answered HTTP "
        f"{status} without an AWS error): point AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_GREENGRASSV2) at "
        "AWS or at a twin that serves GreengrassV2"
    )


def cloud_versions(greengrass: Any, arn: str) -> list[str]:
    """Every version of the component in the account and region (all pages); [] when it does not exist."""
    versions: list[str] = []
    kwargs: dict[str, Any] = {"arn": arn}
    while True:
        try:
            page = greengrass.list_component_versions(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return versions
            no_api = _no_greengrass_api(greengrass, error)
            if no_api is not None:
                raise no_api from error
            raise
        versions += [item["componentVersion"] for item in page.get("componentVersions", [])]
        token = page.get("nextToken")
        if not token:
            return versions
        kwargs["nextToken"] = token


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def _resolve_version(
    config: GdkConfig, built: BuildResult, clients: Clients, region: str, account: str
) -> str:
    """The version to create: NEXT_PATCH numbered from the cloud; a fixed one only if it is new."""
    partition = boto3.session.Session().get_partition_for_region(region)
    arn = component_arn(partition, region, account, config.component)
    published = cloud_versions(clients.greengrass, arn)
    if built.version == NEXT_PATCH:
        return next_patch(published)
    if built.version in published:
        raise PublishFailed(
            f"{config.component} {built.version} already exists in GreengrassV2 ({arn}:versions:"
            f"{built.version}); nothing was uploaded. A component version cannot change: build a new version"
        )
    return built.version


def publish_project(
    project_dir: Path,
    bucket: str | None = None,
    region: str | None = None,
    clients: Clients | None = None,
) -> PublishResult:
    """Uploads one built component's artifacts and creates its component version in GreengrassV2."""
    config = load_gdk_config(project_dir)
    region = region or config.region
    if not region:
        raise PublishFailed(
            f"{config.component}: no Region: pass --region or set publish.region in "
            f"{project_dir / 'gdk-config.json'}"
        )
    if bucket is not None:
        check_bucket_name(bucket, "--bucket")
    clients = clients or Clients.for_region(region)
    if not (config.build_dir / "recipes").is_dir():
        build_project(project_dir)
    built = built_result(config)
    try:
        account = str(clients.sts.get_caller_identity()["Account"])
        version = _resolve_version(config, built, clients, region, account)
        if bucket is None:
            bucket = check_bucket_name(f"{config.bucket.strip()}-{region}-{account}", "publish.bucket")
        _ensure_bucket(clients.s3, bucket, region)
        uploaded: dict[str, str] = {}
        for artifact in built.artifacts:
            key = f"{config.component}/{version}/{artifact.name}"
            clients.s3.upload_file(str(artifact), bucket, key, ExtraArgs=dict(config.file_upload_args))
            uploaded[artifact.name] = f"{S3_PREFIX}{bucket}/{key}"
        recipe = built_recipe(config)
        set_key(recipe.data, "ComponentVersion", version)
        for artifact_entry in recipe.artifacts():
            uri = str(get_key(artifact_entry, "Uri", ""))
            name = uri.rsplit("/", 1)[-1]
            if uri.startswith(S3_PREFIX) and name in uploaded:
                set_key(artifact_entry, "Uri", uploaded[name])
        publish_recipe = config.build_dir / "recipes" / f"{config.component}-{version}{recipe.path.suffix}"
        recipe.path = publish_recipe
        recipe.dump(publish_recipe)
        response = clients.greengrass.create_component_version(inlineRecipe=recipe.text().encode("utf-8"))
    except ClientError as error:
        detail = error.response.get("Error", {})
        code, message = detail.get("Code", "?"), detail.get("Message", str(error))
        failed = f"{config.component}: {error.operation_name} failed"
        raise PublishFailed(f"{failed}: {code}: {message}") from error
    except (BotoCoreError, S3UploadFailedError) as error:
        raise PublishFailed(f"{config.component}: {error}") from error
    status = response.get("status", {})
    state = str(status.get("componentState", ""))
    if state == "FAILED":
        raise PublishFailed(
            f"{config.component} {version}: component version FAILED: {status.get('message', '')}"
        )
    return PublishResult(
        config.component,
        version,
        str(response.get("arn", "")),
        bucket,
        publish_recipe,
        tuple(uploaded.values()),
        state,
    )
