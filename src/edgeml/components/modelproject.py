"""gdk projects for a packaged model: its model component project and its inference app project.

`edgeml build --model-package DIR` calls `write_model_projects`. From the output of `edgeml model
package --out DIR` (one component, the version asked for or the highest) it writes, under the
components folder, two ordinary gdk projects that `edgeml build`/`publish` and real gdk build and publish
like any other:

- the model component com.edgeml.model.<Model>: gdk-config.json with the packaged version (gdk publish
  publishes gdk-config's version: NEXT_PATCH would number it from the cloud, not as packaged), a custom
  build running the shared hook components/com.edgeml.Model/build.py on DIR, and recipe.yaml, the
  packaged recipe (gdk needs one in every project);
- its app com.edgeml.Inference.<Model> (appbinding.py): the Inference recipe bound to the model, a zip
  build of the shared edgeml_inference sources (a symbolic link gdk's copy and edgeml's zip both
  follow) with zip_name "com.edgeml.Inference", so the artifact and PYTHONPATH are the template's.

The template's own model (com.edgeml.model.Digits) gets no app: com.edgeml.Inference is its app. An
existing project is refreshed only when edgeml wrote it (it holds MARKER naming the component); any other
folder in the way is an error and stays untouched. The committed components/com.edgeml.Model is the
sample model's project and holds the marker, so packaging a new Digits version refreshes its version.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgeml.components.appbinding import INFERENCE_COMPONENT, app_component, bind_app_recipe, bound_model
from edgeml.components.build import find_projects
from edgeml.components.errors import ComponentError
from edgeml.components.gdkconfig import CONFIG_FILE, GDK_VERSION, GdkConfig, load_gdk_config
from edgeml.components.recipe import Recipe, get_key, load_recipe

MARKER = ".edgeml-project"
MODEL_HOOK_PROJECT = "com.edgeml.Model"
APP_SOURCES = "edgeml_inference"
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class ModelProjectError(ComponentError):
    """No packaged model to make projects for, or a folder in the way that edgeml did not write."""


@dataclass(frozen=True)
class ModelProjects:
    """The projects written for one packaged model version."""

    model: str
    version: str
    model_project: Path
    app: str
    app_project: Path


def packaged_model(package_dir: Path, version: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """(component, version, recipe) of the one model component packaged in `package_dir`."""
    recipes = sorted((package_dir / "recipes").glob("*.yaml")) if (package_dir / "recipes").is_dir() else []
    found: dict[str, list[tuple[tuple[int, ...], Path]]] = {}
    for path in recipes:
        component, _, candidate = path.stem.rpartition("-")
        match = _VERSION.match(candidate)
        if component and match:
            found.setdefault(component, []).append((tuple(int(p) for p in match.groups()), path))
    if not found:
        raise ModelProjectError(
            f"{package_dir}: no packaged model (run `edgeml model package ... --out {package_dir}` first)"
        )
    if len(found) > 1:
        raise ModelProjectError(f"{package_dir}: holds several model components ({', '.join(sorted(found))})")
    [(component, versions)] = found.items()
    if version is None:
        _, path = max(versions)
    else:
        chosen = [path for parts, path in versions if ".".join(map(str, parts)) == version]
        if not chosen:
            raise ModelProjectError(f"{package_dir}: no packaged {component} {version}")
        path = chosen[0]
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    return component, str(recipe["ComponentVersion"]), recipe


def _owned_or_absent(folder: Path, component: str) -> None:
    marker = folder / MARKER
    if not folder.exists():
        return
    if not marker.is_file() or marker.read_text(encoding="utf-8").strip() != component:
        raise ModelProjectError(
            f"{folder}: exists and was not written by edgeml for {component}; move it away or pass "
            "another --components-dir (nothing was changed)"
        )


def _existing_project(components_dir: Path, component: str) -> Path | None:
    for project in find_projects(components_dir):
        if load_gdk_config(project).component == component:
            return project
    return None


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _gdk_config(component: str, version: str, build: dict[str, Any], template: Path) -> dict[str, Any]:
    publish = load_gdk_config(template)
    settings: dict[str, Any] = {"bucket": publish.bucket}
    if publish.region:
        settings["region"] = publish.region
    return {
        "component": {
            component: {"author": publish.author, "version": version, "build": build, "publish": settings}
        },
        "gdk_version": GDK_VERSION,
    }


def _relative(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target.absolute(), start.absolute())).as_posix()


def write_model_project(
    components_dir: Path, package_dir: Path, version: str | None = None
) -> tuple[Path, str, str, dict[str, Any]]:
    """Writes (or refreshes) the model's gdk project; returns (folder, component, version, recipe)."""
    component, packaged_version, recipe = packaged_model(package_dir, version)
    hook_project = components_dir / MODEL_HOOK_PROJECT
    if not (hook_project / "build.py").is_file():
        raise ModelProjectError(f"{hook_project / 'build.py'}: the model build hook is missing")
    project = _existing_project(components_dir, component) or components_dir / component
    _owned_or_absent(project, component)
    project.mkdir(parents=True, exist_ok=True)
    hook = (
        "build.py"
        if project.resolve() == hook_project.resolve()
        else _relative(hook_project / "build.py", project)
    )
    command = ["python3", hook, "--package", _relative(package_dir, project)]
    config = _gdk_config(
        component, packaged_version, {"build_system": "custom", "custom_build_command": command}, hook_project
    )
    recipe_file = project / "recipe.yaml"
    if not recipe_file.is_symlink():  # the sample model's project links its committed recipe
        header = f"# {component} {packaged_version}: copied by `edgeml build --model-package`.\n"
        recipe_file.write_text(header + yaml.safe_dump(recipe, sort_keys=False, width=1000), encoding="utf-8")
    _write_json(project / CONFIG_FILE, config)
    (project / MARKER).write_text(component + "\n", encoding="utf-8")
    return project, component, packaged_version, recipe


def _template_app(components_dir: Path) -> tuple[Path, GdkConfig, Recipe]:
    """The com.edgeml.Inference project, its gdk-config and its recipe (the template of every app)."""
    project = _existing_project(components_dir, INFERENCE_COMPONENT)
    if project is None:
        raise ModelProjectError(f"{components_dir}: no {INFERENCE_COMPONENT} project to bind the model to")
    config = load_gdk_config(project)
    return project, config, load_recipe(config.recipe_file)


def write_app_project(components_dir: Path, model_recipe: dict[str, Any]) -> tuple[Path, str]:
    """Writes (or refreshes) com.edgeml.Inference.<Model> for the model; the template's own model has
    com.edgeml.Inference itself. Returns (folder, component)."""
    template_project, template_config, template = _template_app(components_dir)
    model = str(get_key(model_recipe, "ComponentName", ""))
    if model == bound_model(template):
        return template_project, INFERENCE_COMPONENT
    app = app_component(model)
    bound = bind_app_recipe(template, model_recipe)
    project = _existing_project(components_dir, app) or components_dir / app
    _owned_or_absent(project, app)
    project.mkdir(parents=True, exist_ok=True)
    sources = project / APP_SOURCES
    if not sources.is_symlink():
        sources.symlink_to(_relative(template_project / APP_SOURCES, project), target_is_directory=True)
    options: dict[str, Any] = {"zip_name": INFERENCE_COMPONENT}
    if template_config.excludes is not None:
        options["excludes"] = list(template_config.excludes)
    build = {"build_system": "zip", "options": options}
    header = (
        f"# {app}: written by `edgeml build --model-package` from {template.path.name} bound to {model}.\n"
        "# Rewritten on every run: change the template (or the deployment's configuration), not this.\n"
    )
    (project / "recipe.yaml").write_text(header + bound.text(), encoding="utf-8")
    _write_json(project / CONFIG_FILE, _gdk_config(app, template_config.version, build, template_project))
    (project / MARKER).write_text(app + "\n", encoding="utf-8")
    return project, app


def write_model_projects(
    components_dir: Path, package_dir: Path, version: str | None = None
) -> ModelProjects:
    """The model project and its app project for one packaged model version; both folders are checked
    before either is written."""
    component, _, _ = packaged_model(package_dir, version)
    _owned_or_absent(_existing_project(components_dir, component) or components_dir / component, component)
    if component != bound_model(_template_app(components_dir)[2]):
        app = app_component(component)
        _owned_or_absent(_existing_project(components_dir, app) or components_dir / app, app)
    model_project, model, model_version, recipe = write_model_project(components_dir, package_dir, version)
    app_project, app = write_app_project(components_dir, recipe)
    return ModelProjects(model, model_version, model_project, app, app_project)
