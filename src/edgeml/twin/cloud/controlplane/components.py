"""GreengrassV2 component operations: create/describe/get/list/delete, and the nucleus's data plane.

Sources: BOTO docs; DG troubleshooting (artifact errors, cross-region), aws-cli #6261 and #7189 (error
text, REQUESTED status with message NONE), gdk #300 (the service's digests are what devices check).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import boto3
import semver
from botocore.config import Config

from edgeml.twin.cloud.controlplane import context
from edgeml.twin.cloud.controlplane.arns import (
    PUBLIC_OWNER,
    ComponentArn,
    component_arn,
    parse_component_arn,
    version_arn,
)
from edgeml.twin.cloud.controlplane.core import Core
from edgeml.twin.cloud.controlplane.errors import ServiceError, conflict, not_found, validation_error
from edgeml.twin.cloud.controlplane.npmrange import BadRange, parse_range
from edgeml.twin.cloud.controlplane.paging import page
from edgeml.twin.cloud.controlplane.public_components import public_recipes
from edgeml.twin.cloud.controlplane.recipes import (
    Recipe,
    check_recipe,
    load_recipe,
    platform_matches,
    render,
    with_digests,
)
from edgeml.twin.cloud.controlplane.timeutil import to_datetime

ARTIFACT_UNREADABLE = "Specified artifact resource cannot be accessed"
PUBLIC_CREATED = 1704067200.0  # 2024-01-01: when the twin says the public versions were published
PRESIGNED_URL_SECONDS = 3600


def _version_key(record: dict[str, Any]) -> semver.Version:
    return semver.Version.parse(record["version"])


def _s3_parts(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return (bucket, key) if bucket and key else None


class Components:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._public: dict[str, dict[str, dict[str, Any]]] = {}

    # --- records -------------------------------------------------------------------------------
    def public_records(self, region: str) -> dict[str, dict[str, Any]]:
        if region not in self._public:
            records = {}
            for document in public_recipes():
                recipe = Recipe(document)
                arn = version_arn(region, PUBLIC_OWNER, recipe.name, recipe.version)
                records[arn] = self._record(arn, recipe, PUBLIC_OWNER, region, PUBLIC_CREATED, processed=True)
                records[arn]["status"] = {"componentState": "DEPLOYABLE", "message": "NONE", "errors": {}}
            self._public[region] = records
        return self._public[region]

    @staticmethod
    def _record(
        arn: str, recipe: Recipe, owner: str, region: str, created: float, *, processed: bool
    ) -> dict[str, Any]:
        return {
            "arn": arn,
            "name": recipe.name,
            "version": recipe.version,
            "owner": owner,
            "region": region,
            "created": created,
            "recipe": recipe.document,
            "processed": processed,
            "status": {"componentState": "REQUESTED", "message": "NONE", "errors": {}},
        }

    def find(self, arn: str, field_name: str = "arn") -> dict[str, Any]:
        """The component version behind a version ARN (processed if it was still REQUESTED)."""
        parsed = parse_component_arn(arn, field_name, versioned=True)
        record = self._lookup(parsed, arn)
        if record is None:
            raise not_found(f"Component version {arn} does not exist", arn, "ComponentVersion")
        self._process(record)
        return record

    def _lookup(self, parsed: ComponentArn, arn: str) -> dict[str, Any] | None:
        if parsed.owner == PUBLIC_OWNER:
            return self.public_records(parsed.region).get(arn)
        return self.core.state.components.get(arn)

    def versions_of(self, region: str, owner: str, name: str) -> list[dict[str, Any]]:
        source = self.public_records(region) if owner == PUBLIC_OWNER else self.core.state.components
        return [
            r for r in source.values() if r["name"] == name and r["region"] == region and r["owner"] == owner
        ]

    def candidates(self, region: str, account: str, name: str) -> list[dict[str, Any]]:
        """Versions dependency resolution may pick: the account's own, else the public ones (DG: a private
        component with a public component's name overrides it)."""
        private = self.versions_of(region, account, name)
        return private if private else self.versions_of(region, PUBLIC_OWNER, name)

    def _process(self, record: dict[str, Any]) -> None:
        """REQUESTED -> DEPLOYABLE with the service's digests, or FAILED naming each unreadable artifact."""
        if record["processed"]:
            return
        recipe = Recipe(record["recipe"])
        digests: dict[str, str] = {}
        errors: dict[str, str] = {}
        for uri in recipe.artifact_uris():
            parts = _s3_parts(uri)
            if parts is None:
                continue
            body = self._read_s3(record["region"], *parts)
            if body is None:
                errors[uri] = ARTIFACT_UNREADABLE
            else:
                digests[uri] = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        record["processed"] = True
        if errors:
            record["status"] = {
                "componentState": "FAILED",
                "message": "Encountered following errors in Artifacts: "
                + ", ".join(f"{u} = {m}" for u, m in errors.items()),
                "errors": errors,
            }
            return
        record["recipe"] = with_digests(record["recipe"], digests)
        record["status"] = {"componentState": "DEPLOYABLE", "message": "NONE", "errors": {}}

    def _read_s3(self, region: str, bucket_name: str, key: str) -> bytes | None:
        backend = self.core.moto_s3()
        bucket = backend.buckets.get(bucket_name)
        if bucket is None or getattr(bucket, "region_name", region) != region:
            return None
        found = bucket.keys.get(key)
        if found is None or not hasattr(found, "value"):
            return None
        value: bytes = found.value
        return value

    # --- operations ----------------------------------------------------------------------------
    def create_component_version(
        self,
        inlineRecipe: bytes | None = None,
        lambdaFunction: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        clientToken: str | None = None,
    ) -> dict[str, Any]:
        ctx = context.current()
        if lambdaFunction is not None:
            raise validation_error(
                "Components from Lambda functions are not supported by the twin",
                reason="OTHER",
                field_name="lambdaFunction",
            )
        if inlineRecipe is None:
            raise validation_error("inlineRecipe is required", field_name="inlineRecipe")
        earlier = self.core.state.components.get(
            self.core.remembered(clientToken, "CreateComponentVersion") or ""
        )
        if earlier is not None:
            return self._created_output(earlier)
        recipe = check_recipe(load_recipe(inlineRecipe))
        arn = version_arn(ctx.region, ctx.account_id, recipe.name, recipe.version)
        if arn in self.core.state.components:
            # the service's text, with its tail when tags were given (aws-greengrass-testing #207)
            tail = " and can't be created again with tags" if tags else ""
            raise conflict(
                f"Component [{recipe.name} : {recipe.version}] for account [{ctx.account_id}] already exists"
                f"{tail}",
                arn,
                "ComponentVersion",
            )
        errors = {}
        for uri in recipe.artifact_uris():
            parts = _s3_parts(uri)
            if uri.startswith("s3://") and (parts is None or self._read_s3(ctx.region, *parts) is None):
                errors[uri] = ARTIFACT_UNREADABLE
        if errors:
            listed = ", ".join(f"{uri} = {message}" for uri, message in errors.items())
            raise validation_error(
                f"Invalid Input: Encountered following errors in Artifacts: {{{listed}}}",
                field_name="inlineRecipe",
            )
        record = self._record(arn, recipe, ctx.account_id, ctx.region, self.core.now(), processed=False)
        self.core.state.components[arn] = record
        if tags:
            self.core.state.tags[arn] = dict(tags)
        self.core.remember(clientToken, "CreateComponentVersion", arn)
        return self._created_output(record)

    @staticmethod
    def _created_output(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "arn": record["arn"],
            "componentName": record["name"],
            "componentVersion": record["version"],
            "creationTimestamp": to_datetime(record["created"]),
            "status": {"componentState": "REQUESTED", "message": "NONE", "errors": {}},
        }

    def describe_component(self, arn: str) -> dict[str, Any]:
        record = self.find(arn)
        recipe = Recipe(record["recipe"])
        out: dict[str, Any] = {
            "arn": arn,
            "componentName": record["name"],
            "componentVersion": record["version"],
            "creationTimestamp": to_datetime(record["created"]),
            "status": record["status"],
            "platforms": recipe.platforms(),
            "tags": self.core.state.tags.get(arn, {}),
        }
        if recipe.publisher:
            out["publisher"] = recipe.publisher
        if recipe.description:
            out["description"] = recipe.description
        return out

    def get_component(self, arn: str, recipeOutputFormat: str = "JSON") -> dict[str, Any]:
        record = self.find(arn)
        return {
            "recipeOutputFormat": recipeOutputFormat,
            "recipe": render(record["recipe"], recipeOutputFormat),
            "tags": self.core.state.tags.get(arn, {}),
        }

    def list_components(
        self, scope: str = "PRIVATE", maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        ctx = context.current()
        if scope == "PUBLIC":
            source = self.public_records(ctx.region)
        else:
            source = {
                a: r
                for a, r in self.core.state.components.items()
                if r["region"] == ctx.region and r["owner"] == ctx.account_id
            }
        by_name: dict[str, dict[str, Any]] = {}
        for record in source.values():
            self._process(record)
            best = by_name.get(record["name"])
            if best is None or _version_key(record) > _version_key(best):
                by_name[record["name"]] = record
        items = []
        for name in sorted(by_name):
            latest = by_name[name]
            recipe = Recipe(latest["recipe"])
            items.append(
                {
                    "arn": component_arn(ctx.region, latest["owner"], name),
                    "componentName": name,
                    "latestVersion": {
                        "arn": latest["arn"],
                        "componentVersion": latest["version"],
                        "creationTimestamp": to_datetime(latest["created"]),
                        **({"description": recipe.description} if recipe.description else {}),
                        **({"publisher": recipe.publisher} if recipe.publisher else {}),
                        "platforms": recipe.platforms(),
                    },
                }
            )
        listed, token = page(items, maxResults, nextToken)
        return {"components": listed, **({"nextToken": token} if token else {})}

    def list_component_versions(
        self, arn: str, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        parsed = parse_component_arn(arn, versioned=False)
        # a component with no version lists nothing (no error): gdk publish relies on it for NEXT_PATCH
        records = self.versions_of(parsed.region, parsed.owner, parsed.name)
        records.sort(key=_version_key, reverse=True)
        items = [
            {"componentName": r["name"], "componentVersion": r["version"], "arn": r["arn"]} for r in records
        ]
        listed, token = page(items, maxResults, nextToken)
        return {"componentVersions": listed, **({"nextToken": token} if token else {})}

    def delete_component(self, arn: str) -> dict[str, Any]:
        parsed = parse_component_arn(arn, versioned=True)
        if parsed.owner == PUBLIC_OWNER:
            raise ServiceError("AccessDeniedException", f"Public component {arn} cannot be deleted")
        if arn not in self.core.state.components:
            raise not_found(f"Component version {arn} does not exist", arn, "ComponentVersion")
        del self.core.state.components[arn]
        self.core.state.tags.pop(arn, None)
        return {}

    # --- the nucleus's data plane --------------------------------------------------------------
    def resolve_component_candidates(
        self, platform: dict[str, Any] | None = None, componentCandidates: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        ctx = context.current()
        if not componentCandidates:
            raise validation_error("componentCandidates is required", field_name="componentCandidates")
        if not platform:
            raise validation_error("platform is required", field_name="platform")
        device = {str(k): str(v) for k, v in (platform.get("attributes") or {}).items()}
        if platform.get("name") and "os" not in device:
            device["os"] = str(platform["name"])
        resolved = []
        for candidate in componentCandidates:
            name = candidate.get("componentName")
            if not name:
                raise validation_error(
                    "componentCandidates[].componentName is required", field_name="componentCandidates"
                )
            requirements = candidate.get("versionRequirements") or {}
            try:
                ranges = [parse_range(text) for text in requirements.values()]
            except BadRange as error:
                raise validation_error(
                    f"versionRequirements of {name}: {error}", field_name="componentCandidates"
                ) from error
            best = self._best(self.candidates(ctx.region, ctx.account_id, name), ranges, device)
            if best is None:
                wanted = ", ".join(f"{group} requires {text}" for group, text in requirements.items())
                raise not_found(
                    f"No component version of {name} satisfies the requirements ({wanted}) on platform "
                    f"{json.dumps(device, sort_keys=True)}",
                    name,
                    "Component",
                )
            resolved.append(
                {
                    "arn": best["arn"],
                    "componentName": name,
                    "componentVersion": best["version"],
                    "recipe": render(best["recipe"], "JSON"),
                    "vendorGuidance": "ACTIVE",
                }
            )
        return {"resolvedComponentVersions": resolved}

    def _best(
        self, records: list[dict[str, Any]], ranges: list[Any], device: dict[str, str]
    ) -> dict[str, Any] | None:
        fitting = []
        for record in records:
            self._process(record)
            if record["status"]["componentState"] != "DEPLOYABLE":
                continue
            if not all(r.admits(record["version"]) for r in ranges):
                continue
            manifests = Recipe(record["recipe"]).manifests()
            if manifests and not any(platform_matches(m.get("Platform") or {}, device) for m in manifests):
                continue
            fitting.append(record)
        return max(fitting, key=_version_key) if fitting else None

    def get_component_version_artifact(
        self,
        arn: str,
        artifactName: str,
        s3EndpointType: str | None = None,
        iotEndpointType: str | None = None,
    ) -> dict[str, Any]:
        record = self.find(arn)
        for uri in Recipe(record["recipe"]).artifact_uris():
            parts = _s3_parts(uri)
            if parts is None:
                continue
            if artifactName in (uri, f"{parts[0]}/{parts[1]}", parts[1]):
                return {"preSignedUrl": self.presign(record["region"], *parts)}
        raise not_found(f"Artifact {artifactName} is not an artifact of {arn}", artifactName, "Artifact")

    presigner: Callable[[str, str, str], str] | None = None

    def presign(self, region: str, bucket: str, key: str) -> str:
        """A GET URL for the object, signed for the endpoint the request came to (the twin's)."""
        if self.presigner is not None:
            return self.presigner(region, bucket, key)
        ctx = context.current()
        client = boto3.client(
            "s3",
            region_name=region,
            endpoint_url=ctx.endpoint_url or None,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )
        url: str = client.generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket, "Key": key},
            ExpiresIn=PRESIGNED_URL_SECONDS,
        )
        return url
