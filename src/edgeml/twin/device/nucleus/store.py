"""The component store: recipes and artifacts under <root>/packages, as NUC componentmanager/
ComponentStore.java, ComponentManager.preparePackages and the artifact downloaders do it.

- `s3://` artifacts are read with the device's credentials (S3Downloader), `greengrass:` ones through
  GetComponentVersionArtifact's presigned URL (GreengrassRepositoryDownloader);
- each download is checked against the digest the service computed (ArtifactDownloader: a mismatch is
  ARTIFACT_CHECKSUM_MISMATCH and the file is deleted);
- `Unarchive: ZIP` extracts to artifacts-unarchived/<component>/<version>/<archive name without .zip>/;
- `Permission` (Read/Execute: NONE, OWNER, ALL; default Read OWNER, Execute NONE) is applied to the file
  and to what was unarchived from it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import stat
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from edgeml.twin.device.nucleus.errors import DeploymentError, NucleusTwinError
from edgeml.twin.device.nucleus.paths import NucleusPaths
from edgeml.twin.device.nucleus.recipe import Recipe, key

CHECKSUM_MISMATCH = "Integrity check for downloaded artifact failed. Probably due to file corruption."
_READ = {"NONE": 0, "OWNER": stat.S_IRUSR, "ALL": stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH}
_EXECUTE = {"NONE": 0, "OWNER": stat.S_IXUSR, "ALL": stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH}


def digest_of(path: Path, algorithm: str = "SHA-256") -> str:
    name = algorithm.replace("-", "").lower()
    hasher = hashlib.new(name)
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            hasher.update(block)
    return base64.b64encode(hasher.digest()).decode("ascii")


def _mode(permission: Mapping[str, Any] | None) -> int:
    read = str(key(permission, "Read") or "OWNER").upper()
    execute = str(key(permission, "Execute") or "NONE").upper()
    return _READ.get(read, stat.S_IRUSR) | _EXECUTE.get(execute, 0) | stat.S_IWUSR


class ComponentStore:
    def __init__(self, paths: NucleusPaths, greengrass: Any, s3: Any) -> None:
        self.paths = paths
        self.greengrass = greengrass
        self.s3 = s3

    # -- recipes --------------------------------------------------------------------------------
    def save_recipe(self, recipe: Recipe) -> None:
        path = self.paths.recipe_path(recipe.name, recipe.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"arn": recipe.arn, "recipe": recipe.document}), encoding="utf-8")

    def recipes(self, name: str) -> list[Recipe]:
        found = []
        for path in sorted(self.paths.recipe_path(name, "x").parent.glob(f"{name}-*.recipe.json")):
            stored = json.loads(path.read_text(encoding="utf-8"))
            recipe = Recipe(stored["recipe"], stored.get("arn", ""))
            if recipe.name == name:
                found.append(recipe)
        return found

    # -- artifacts ------------------------------------------------------------------------------
    def prepare(self, recipe: Recipe, manifest: Mapping[str, Any]) -> None:
        """Downloads, verifies and unarchives the manifest's artifacts (skips those already in place)."""
        target = self.paths.artifact_path(recipe.name, recipe.version)
        target.mkdir(parents=True, exist_ok=True)
        self.paths.unarchive_path(recipe.name, recipe.version).mkdir(parents=True, exist_ok=True)
        for artifact in Recipe.artifacts_of(manifest):
            uri = str(key(artifact, "Uri") or key(artifact, "URI") or "")
            filename = uri.rstrip("/").rsplit("/", 1)[-1]
            if not filename:
                raise DeploymentError(
                    f"Artifact URI {uri!r} of {recipe.name} names no file", ["ARTIFACT_URI_NOT_VALID"]
                )
            path = target / filename
            digest = key(artifact, "Digest")
            algorithm = str(key(artifact, "Algorithm") or "SHA-256")
            if not (path.exists() and digest and digest_of(path, algorithm) == digest):
                self._download(recipe, uri, path)
                if digest and digest_of(path, algorithm) != digest:
                    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
                    path.unlink()
                    raise DeploymentError(
                        f"Failed to download artifact {uri} of {recipe.name}-{recipe.version}: "
                        f"{CHECKSUM_MISMATCH}",
                        ["ARTIFACT_DOWNLOAD_ERROR", "ARTIFACT_CHECKSUM_MISMATCH"],
                    )
            mode = _mode(key(artifact, "Permission"))
            if str(key(artifact, "Unarchive") or "NONE").upper() == "ZIP":
                self._unzip(recipe, path, mode)
            path.chmod(mode)

    def _download(self, recipe: Recipe, uri: str, path: Path) -> None:
        if path.exists():
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        partial = path.with_name(path.name + ".download")
        try:
            if uri.startswith("s3://"):
                bucket, _, object_key = uri[len("s3://") :].partition("/")
                body = self.s3.get_object(Bucket=bucket, Key=object_key)["Body"].read()
                partial.write_bytes(body)
            elif uri.startswith("greengrass:"):
                name = uri[len("greengrass:") :]
                url = self.greengrass.get_component_version_artifact(arn=recipe.arn, artifactName=name)[
                    "preSignedUrl"
                ]
                with urllib.request.urlopen(url, timeout=60) as answer:
                    partial.write_bytes(answer.read())
            else:
                raise NucleusTwinError(
                    f"artifact {uri} of {recipe.name}: the twin downloads only s3:// and greengrass: "
                    "artifacts "
                    "(docker: needs the Docker application manager, which the twin does not run)"
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            kind = (
                "S3_RESOURCE_NOT_FOUND"
                if code in ("NoSuchKey", "NoSuchBucket", "404")
                else ("S3_ACCESS_DENIED" if code in ("AccessDenied", "403") else "CLOUD_API_ERROR")
            )
            raise DeploymentError(
                f"Failed to download artifact {uri} of {recipe.name}: {error}",
                ["ARTIFACT_DOWNLOAD_ERROR", kind],
            ) from error
        except (BotoCoreError, OSError) as error:
            raise DeploymentError(
                f"Failed to download artifact {uri} of {recipe.name}: {error}", ["ARTIFACT_DOWNLOAD_ERROR"]
            ) from error
        partial.replace(path)

    def _unzip(self, recipe: Recipe, archive: Path, mode: int) -> None:
        destination = self.paths.unarchive_path(recipe.name, recipe.version) / archive.name.removesuffix(
            ".zip"
        )
        if destination.exists():
            for item in destination.rglob("*"):
                item.chmod(stat.S_IRWXU)
            shutil.rmtree(destination)
        destination.mkdir(parents=True)
        try:
            with zipfile.ZipFile(archive) as source:
                for member in source.infolist():
                    target = (destination / member.filename).resolve()
                    if not target.is_relative_to(destination.resolve()):
                        raise DeploymentError(
                            f"{archive.name}: entry {member.filename} leaves the folder", ["IO_UNZIP_ERROR"]
                        )
                source.extractall(destination)
        except zipfile.BadZipFile as error:
            raise DeploymentError(
                f"Failed to unarchive {archive.name}: {error}", ["IO_UNZIP_ERROR"]
            ) from error
        for item in destination.rglob("*"):
            if item.is_file():
                item.chmod(mode)

    def remove_unused(self, in_use: Mapping[str, str]) -> None:
        """ComponentManager.cleanupStaleVersions: versions no service uses leave the store."""
        for folder in (
            self.paths.root / "packages" / "artifacts",
            self.paths.root / "packages" / "artifacts-unarchived",
        ):
            if not folder.exists():
                continue
            for component in folder.iterdir():
                for version in component.iterdir():
                    if in_use.get(component.name) != version.name:
                        for item in version.rglob("*"):
                            item.chmod(stat.S_IRWXU)
                        shutil.rmtree(version, ignore_errors=True)
        for recipe_file in (self.paths.root / "packages" / "recipes").glob("*.recipe.json"):
            stored = json.loads(recipe_file.read_text(encoding="utf-8"))
            recipe = Recipe(stored["recipe"])
            if in_use.get(recipe.name) != recipe.version:
                recipe_file.unlink()
