"""One inference app component per model: the Inference recipe bound to another model component.

The committed recipes/com.edgeml.Inference.yaml is the template and also the app of the sample model
it names (com.edgeml.model.Digits). For any other model component com.edgeml.model.<Model> the app is
com.edgeml.Inference.<Model>, the same recipe with the model written where the nucleus needs a name:

- ComponentDependencies: the model replaces the template's model (same VersionRequirement, the
  metadata.json contract, and DependencyType). It has to be a direct dependency: a nucleus resolves
  `{<component>:artifacts:decompressedPath}` only for direct dependencies (KernelConfigResolver).
- every lifecycle string: `{<template model>:...}` becomes `{<model>:...}` (the MODEL_DIR lines). The
  name cannot come from configuration: the nucleus does not interpolate configuration values unless
  interpolateComponentConfiguration is on, and never `{configuration:...}` inside them.
- Manifests: only the platforms the model has a manifest for, so that on every device the app and the
  model pick the same manifest Name (each component takes the first manifest whose Platform matches:
  an app manifest for nvidia beside a model without one would point MODEL_DIR at a folder that the
  model's cpu manifest never unpacks).
- accessControl policy names start with the app's name; HttpPort defaults to 0 (off): two apps on one
  device cannot both bind the template's port, so the second one's HTTP input is turned on, on a port
  of its own, by the deployment's configuration merge.
"""

from __future__ import annotations

import copy
from typing import Any

import semver

from edgeml.components.errors import RecipeInvalid
from edgeml.components.recipe import Recipe, find_key, get_key, set_key
from edgeml.model.recipe import COMPONENT_PREFIX as MODEL_PREFIX

INFERENCE_COMPONENT = "com.edgeml.Inference"


def app_component(model_component: str) -> str:
    """com.edgeml.Inference.<Model> for com.edgeml.model.<Model>."""
    if not model_component.startswith(MODEL_PREFIX) or len(model_component) == len(MODEL_PREFIX):
        raise RecipeInvalid(f"model component '{model_component}': expected {MODEL_PREFIX}<Name>")
    return f"{INFERENCE_COMPONENT}.{model_component[len(MODEL_PREFIX) :]}"


def bound_model(recipe: Recipe) -> str:
    """The model component an app recipe depends on (its one com.edgeml.model.* dependency)."""
    dependencies = get_key(recipe.data, "ComponentDependencies", None) or {}
    models = [name for name in dependencies if str(name).startswith(MODEL_PREFIX)]
    if len(models) != 1:
        raise RecipeInvalid(
            f"{recipe.path}: expected one {MODEL_PREFIX}* dependency, found {models or 'none'}"
        )
    return str(models[0])


def _satisfies(version: str, requirement: str) -> bool:
    """npm-style range of space-separated comparators (what our recipes use), all of them met."""
    parsed = semver.Version.parse(version)
    return all(parsed.match(part) for part in requirement.split())


def _rename_in_strings(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(f"{{{old}:", f"{{{new}:")
    if isinstance(value, dict):
        return {key: _rename_in_strings(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_rename_in_strings(item, old, new) for item in value]
    return value


def _model_platforms(model_recipe: dict[str, Any]) -> dict[str, Any]:
    manifests = get_key(model_recipe, "Manifests", None) or []
    return {str(get_key(m, "Name", "")): get_key(m, "Platform", None) for m in manifests}


def _bind_dependencies(
    data: dict[str, Any], template_model: str, model: str, version: str, where: str
) -> None:
    dependencies_key = find_key(data, "ComponentDependencies") or "ComponentDependencies"
    rebuilt: dict[str, Any] = {}
    for name, spec in data[dependencies_key].items():
        if name != template_model:
            rebuilt[name] = spec
            continue
        requirement = str(get_key(spec, "VersionRequirement", ""))
        if requirement and not _satisfies(version, requirement):
            raise RecipeInvalid(
                f"{where}: {model} {version} is outside the app's model requirement '{requirement}' "
                "(the metadata.json contract); package a version inside it"
            )
        rebuilt[model] = spec
    data[dependencies_key] = rebuilt


def _bind_manifests(data: dict[str, Any], model_recipe: dict[str, Any], model: str, where: str) -> None:
    platforms = _model_platforms(model_recipe)
    manifests_key = find_key(data, "Manifests") or "Manifests"
    kept = []
    for manifest in data.get(manifests_key) or []:
        name = str(get_key(manifest, "Name", ""))
        if name not in platforms:
            continue
        if get_key(manifest, "Platform", None) != platforms[name]:
            raise RecipeInvalid(f"{where}: manifest {name}: the app and {model} name different platforms")
        kept.append(manifest)
    if not kept:
        raise RecipeInvalid(f"{where}: {model} has no manifest for any platform the app runs on")
    data[manifests_key] = kept


def _bind_configuration(data: dict[str, Any], app: str) -> None:
    configuration = get_key(data, "ComponentConfiguration", None) or {}
    defaults = get_key(configuration, "DefaultConfiguration", None)
    if not isinstance(defaults, dict):
        return
    if find_key(defaults, "HttpPort") is not None:
        set_key(defaults, "HttpPort", 0)
    access = get_key(defaults, "accessControl", None) or {}
    for service, policies in access.items():
        access[service] = {
            (
                f"{app}:{name[len(INFERENCE_COMPONENT) + 1 :]}"
                if name.startswith(f"{INFERENCE_COMPONENT}:")
                else name
            ): policy
            for name, policy in policies.items()
        }


def bind_app_recipe(template: Recipe, model_recipe: dict[str, Any]) -> Recipe:
    """The app recipe for the model whose packaged recipe is `model_recipe` (the template is not changed)."""
    model = str(get_key(model_recipe, "ComponentName", ""))
    version = str(get_key(model_recipe, "ComponentVersion", ""))
    app = app_component(model)
    template_model = bound_model(template)
    where = f"{template.path} bound to {model}"
    data = copy.deepcopy(template.data)
    set_key(data, "ComponentName", app)
    _bind_dependencies(data, template_model, model, version, where)
    _bind_manifests(data, model_recipe, model, where)
    manifests_key = find_key(data, "Manifests") or "Manifests"
    data[manifests_key] = _rename_in_strings(data[manifests_key], template_model, model)
    _bind_configuration(data, app)
    return Recipe(template.path, data)
