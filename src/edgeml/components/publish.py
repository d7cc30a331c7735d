"""`edgeml publish`: what `gdk component publish` (1.6.2) does with a built component.

1. Builds the component first when greengrass-build/ has no build of it.
2. Version: the built recipe's ComponentVersion when it is a semantic version; for NEXT_PATCH, the patch
   after the highest version GreengrassV2 ListComponentVersions returns for the component ARN (1.0.0
   when there is none).
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
    if built.version != NEXT_PATCH:
        return built.version
    partition = boto3.session.Session().get_partition_for_region(region)
    return next_patch(
        cloud_versions(clients.greengrass, component_arn(partition, region, account, config.component))
    )


def publish_project(
    project_dir: Path,
    bucket: str | None = None,
    region: str | None = None,
    clients: Clients | None = None,
) -> PublishResult:
    """Uploads one built component's artifacts and creates its component version in GreengrassV2."""
    config = load_gdk_config(project_dir)
    region = region or config.region
    clients = clients or Clients.for_region(region)
    if not (config.build_dir / "recipes").is_dir():
        build_project(project_dir)
    built = built_result(config)
    try:
        account = str(clients.sts.get_caller_identity()["Account"])
        version = _resolve_version(config, built, clients, region, account)
        bucket = bucket or f"{config.bucket}-{region}-{account}"
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
