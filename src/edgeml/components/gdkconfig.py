"""gdk-config.json: the gdk 1.6.2 project configuration of one component folder, validated and typed.

Accepts exactly what gdk 1.6.2 accepts (gdk/common/configuration.py `get_configuration`): the JSON schema
shipped inside gdk (gdk/static/config_schema.json, copied unchanged to schemas/), then gdk's CLI version
check (a project may not ask for a gdk newer than 1.6.2). What gdk fills in for a missing key is filled
in the same way: no publish.region (gdk then needs --region), build options without excludes (gdk then
excludes nothing beyond its three fixed entries), zip_name ("" = the component name).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import semver

from edgeml.components.errors import GdkConfigInvalid
from edgeml.components.schema import CONFIG_SCHEMA, first_violation, pointer

CONFIG_FILE = "gdk-config.json"
NEXT_PATCH = "NEXT_PATCH"
BUILD_DIR = "greengrass-build"
# The gdk whose schema and behaviour this module follows (gdk/_version.py).
GDK_VERSION = "1.6.2"
# gdk's zip build system, when gdk-config.json sets no build options.excludes.
DEFAULT_EXCLUDES = ("**/test*", "**/.*", "**/node_modules")


@dataclass(frozen=True)
class GdkConfig:
    """One gdk project: the component folder and what its gdk-config.json says."""

    project_dir: Path
    component: str
    author: str
    version: str
    build_system: str
    custom_build_command: tuple[str, ...] = ()
    excludes: tuple[str, ...] | None = None
    zip_name: str | None = None
    bucket: str = ""
    region: str = ""
    file_upload_args: dict[str, Any] = field(default_factory=dict)
    gdk_version: str = ""

    @property
    def build_dir(self) -> Path:
        return self.project_dir / BUILD_DIR

    @property
    def recipe_file(self) -> Path:
        """recipe.json or recipe.yaml in the project folder, resolved as gdk does (symlinks followed)."""
        found = [
            self.project_dir / name
            for name in ("recipe.json", "recipe.yaml")
            if (self.project_dir / name).exists()
        ]
        if len(found) != 1:
            what = "both recipe.json and recipe.yaml" if found else "no recipe.json or recipe.yaml"
            raise GdkConfigInvalid(f"{self.project_dir}: {what} (gdk needs exactly one)")
        return found[0].resolve()

    @property
    def zip_file_name(self) -> str:
        """The zip build's archive name (gdk/build_system/Zip.py): the folder's name unless zip_name is set,
        and zip_name "" means the component name."""
        if self.zip_name is None:
            return f"{self.project_dir.resolve().name}.zip"
        return f"{self.zip_name or self.component}.zip"

    @property
    def zip_excludes(self) -> tuple[str, ...]:
        """Glob patterns (relative to the project folder) left out of the zip, as gdk's Zip build does."""
        always = (CONFIG_FILE, BUILD_DIR, self.recipe_file.name)
        return always + (DEFAULT_EXCLUDES if self.excludes is None else self.excludes)


def load_gdk_config(project_dir: Path) -> GdkConfig:
    """Reads and validates `project_dir`/gdk-config.json against gdk 1.6.2's project schema."""
    path = project_dir / CONFIG_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise GdkConfigInvalid(f"{path}: no such file (every components/<Name>/ needs one)") from error
    except (OSError, ValueError) as error:
        raise GdkConfigInvalid(f"{path}: not readable JSON ({error})") from error
    violation = first_violation(raw, CONFIG_SCHEMA)
    if violation is not None:
        where, message = violation
        raise GdkConfigInvalid(f"{path}: {pointer(where) or '/'}: {message}")
    _check_gdk_version(path, str(raw["gdk_version"]))
    [(component, settings)] = raw["component"].items()
    build = settings["build"]
    command = build.get("custom_build_command", ())
    options = build.get("options") or {}
    # gdk: no options at all -> its default excludes; options without "excludes" -> none.
    excludes = options.get("excludes", []) if options else None
    zip_name = options.get("zip_name")
    publish = settings["publish"]
    return GdkConfig(
        project_dir=project_dir,
        component=component,
        author=settings["author"],
        version=settings["version"],
        build_system=build["build_system"],
        custom_build_command=tuple(shlex.split(command) if isinstance(command, str) else command),
        excludes=tuple(excludes) if excludes is not None else None,
        zip_name=str(zip_name) if zip_name is not None else None,
        bucket=publish["bucket"],
        region=str(publish.get("region", "")),
        file_upload_args=dict((publish.get("options") or {}).get("file_upload_args", {})),
        gdk_version=raw["gdk_version"],
    )


def _check_gdk_version(path: Path, wanted: str) -> None:
    """gdk refuses a project that asks for a newer gdk (configuration.validate_cli_version)."""
    # The schema's pattern is not anchored at the end, so gdk accepts "1.6.2x"; packaging.Version then
    # fails on it. semver's parse is close enough to refuse what gdk cannot read.
    try:
        newer = semver.Version.parse(wanted) > semver.Version.parse(GDK_VERSION)
    except ValueError as error:
        raise GdkConfigInvalid(f"{path}: /gdk_version: {wanted!r} is not a version gdk can read") from error
    if newer:
        raise GdkConfigInvalid(
            f"{path}: /gdk_version: the project needs gdk {wanted}; this toolkit follows gdk {GDK_VERSION}"
        )
