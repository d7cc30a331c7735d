"""`edgeml build`: what `gdk component build` (1.6.2) writes, without gdk installed.

For each component folder (components/<Name>/ with gdk-config.json and recipe.yaml):
- greengrass-build/ is emptied and greengrass-build/recipes/ and
  greengrass-build/artifacts/<Name>/<version>/ are created (<version> is gdk-config's, NEXT_PATCH included);
- zip: the folder is zipped to <folder name>.zip, or <build.options.zip_name>.zip when set ("" is the
  component name) (gdk's excludes), copied into the artifacts folder, and
  the recipe is written to greengrass-build/recipes/<recipe file name> with ComponentName,
  ComponentVersion and ComponentPublisher from gdk-config.json and each built artifact's URI set to
  s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/<file> (resolved by publish);
- custom: the configured command runs in the component folder and must write that layout itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeml.components.errors import BuildFailed, RecipeInvalid, UnknownComponent
from edgeml.components.gdkconfig import CONFIG_FILE, GdkConfig, load_gdk_config
from edgeml.components.recipe import (
    BUILD_URI_PREFIX,
    S3_PREFIX,
    Recipe,
    check_file_size,
    get_key,
    load_recipe,
    set_key,
)
from edgeml.components.zipbuild import write_zip


@dataclass(frozen=True)
class BuildResult:
    """What landed in the project's greengrass-build folder."""

    component: str
    version: str
    recipe: Path
    artifacts: tuple[Path, ...]


def find_projects(components_dir: Path, names: list[str] | None = None) -> list[Path]:
    """The gdk project folders under `components_dir`: all of them, or those of the named components."""
    if not components_dir.is_dir():
        raise UnknownComponent(f"{components_dir}: no such folder of component projects")
    projects = {path.parent.name: path.parent for path in sorted(components_dir.glob(f"*/{CONFIG_FILE}"))}
    by_component = {load_gdk_config(folder).component: folder for folder in projects.values()}
    if not names:
        return [by_component[name] for name in sorted(by_component)]
    chosen = []
    for name in names:
        folder = by_component.get(name) or projects.get(name)
        if folder is None:
            known = ", ".join(sorted(by_component)) or "none"
            raise UnknownComponent(f"component '{name}': no gdk project in {components_dir} (known: {known})")
        chosen.append(folder)
    return chosen


def _reset_build_dir(config: GdkConfig) -> Path:
    shutil.rmtree(config.build_dir, ignore_errors=True)
    (config.build_dir / "recipes").mkdir(parents=True)
    artifacts = config.build_dir / "artifacts" / config.component / config.version
    artifacts.mkdir(parents=True)
    return artifacts


def _zip_build(config: GdkConfig, recipe: Recipe, artifacts_dir: Path) -> BuildResult:
    zip_name = config.zip_file_name
    with tempfile.TemporaryDirectory(prefix="edgeml-zip-") as scratch:
        built = Path(scratch) / zip_name
        write_zip(config.project_dir, built, config.zip_excludes)
        produced = {zip_name: built}
        copied = []
        for artifact in recipe.artifacts():
            uri = str(get_key(artifact, "Uri", ""))
            if not uri.startswith(S3_PREFIX):
                continue
            file_name = uri.rsplit("/", 1)[-1]
            if file_name not in produced:
                raise BuildFailed(
                    f"{recipe.path}: artifact {uri} is not produced by the zip build (it makes {zip_name})"
                )
            shutil.copyfile(produced[file_name], artifacts_dir / file_name)
            set_key(artifact, "Uri", f"{BUILD_URI_PREFIX}/{file_name}")
            copied.append(artifacts_dir / file_name)
    set_key(recipe.data, "ComponentName", config.component)
    set_key(recipe.data, "ComponentVersion", config.version)
    set_key(recipe.data, "ComponentPublisher", config.author)
    target = config.build_dir / "recipes" / recipe.path.name
    recipe.dump(target)
    return BuildResult(config.component, config.version, target, tuple(dict.fromkeys(copied)))


def _custom_build(config: GdkConfig) -> BuildResult:
    # The command runs as if from this interpreter's environment (an activated venv): `python3` in a
    # custom_build_command resolves to the interpreter running edgeml.
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    try:
        completed = subprocess.run(
            list(config.custom_build_command), cwd=config.project_dir, env=env, check=False
        )
    except OSError as error:
        raise BuildFailed(
            f"{config.component}: custom_build_command {config.custom_build_command}: {error}"
        ) from error
    if completed.returncode != 0:
        command = " ".join(config.custom_build_command)
        raise BuildFailed(
            f"{config.component}: custom build command `{command}` exited {completed.returncode}"
        )
    return built_result(config)


def built_recipe(config: GdkConfig) -> Recipe:
    """The recipe a build left in greengrass-build/recipes (gdk's file name, else the only one there)."""
    recipes_dir = config.build_dir / "recipes"
    preferred = recipes_dir / config.recipe_file.name
    if preferred.is_file():
        return load_recipe(preferred)
    found = sorted(p for p in recipes_dir.glob("*") if p.suffix in (".yaml", ".yml", ".json"))
    if len(found) != 1:
        raise BuildFailed(
            f"{recipes_dir}: expected one built recipe of {config.component}, found {len(found)}"
        )
    return load_recipe(found[0])


def built_result(config: GdkConfig) -> BuildResult:
    """Reads back what a build left in greengrass-build."""
    recipe = built_recipe(config)
    if recipe.name != config.component:
        raise BuildFailed(
            f"{recipe.path}: built recipe is {recipe.name!r}, gdk-config.json says {config.component!r}"
        )
    artifacts_dir = config.build_dir / "artifacts" / config.component / recipe.version
    artifacts = (
        tuple(sorted(p for p in artifacts_dir.glob("*") if p.is_file())) if artifacts_dir.is_dir() else ()
    )
    return BuildResult(config.component, recipe.version, recipe.path, artifacts)


def build_project(project_dir: Path) -> BuildResult:
    """Builds one component folder into its greengrass-build/ (replaced)."""
    config = load_gdk_config(project_dir)
    if config.build_system == "custom":
        _reset_build_dir(config)
        return _custom_build(config)
    if config.build_system != "zip":
        raise BuildFailed(
            f"{project_dir / CONFIG_FILE}: build_system {config.build_system!r} needs gdk itself"
        )
    check_file_size(config.recipe_file)
    recipe = load_recipe(config.recipe_file)
    recipe.validate()
    if recipe.name and recipe.name != config.component:
        raise RecipeInvalid(
            f"{recipe.path}: ComponentName {recipe.name!r} but gdk-config.json says {config.component!r}"
        )
    artifacts_dir = _reset_build_dir(config)
    return _zip_build(config, recipe, artifacts_dir)
