"""Generated recipes and version ranges: the control plane answers a ServiceError or succeeds, never crashes,
and a refused request leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from controlplane_kit import Twin, started_twin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeml.twin.cloud.controlplane.npmrange import BadRange, parse_range
from edgeml.twin.cloud.service import ServiceError

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_BASE: dict[str, Any] = {
    "RecipeFormatVersion": "2020-01-25",
    "ComponentName": "com.example.Fuzz",
    "ComponentVersion": "1.0.0",
    "ComponentDescription": "d",
    "ComponentPublisher": "p",
    "ComponentConfiguration": {"DefaultConfiguration": {"a": 1}},
    "ComponentDependencies": {"dep": {"VersionRequirement": ">=1.0.0", "DependencyType": "HARD"}},
    "Manifests": [
        {"Platform": {"os": "linux"}, "Lifecycle": {"Run": "x"}, "Artifacts": [{"Uri": "docker:x"}]}
    ],
}
# where a mutation lands: a top-level key, or a key inside the dependency, the manifest, its artifact
_PATHS = [(key,) for key in [*_BASE, "ComponentType"]] + [
    ("ComponentDependencies", "dep", "VersionRequirement"),
    ("ComponentDependencies", "dep", "DependencyType"),
    ("ComponentDependencies", "dep"),
    ("Manifests", 0, "Platform"),
    ("Manifests", 0, "Platform", "os"),
    ("Manifests", 0, "Artifacts"),
    ("Manifests", 0, "Artifacts", 0),
    ("Manifests", 0, "Artifacts", 0, "Uri"),
    ("Manifests", 0),
]


def _mutated(changes: list[tuple[int, Any]]) -> dict[str, Any]:
    recipe: dict[str, Any] = json.loads(json.dumps(_BASE))
    for path_index, value in changes:
        path = _PATHS[path_index]
        node: Any = recipe
        try:
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced a parent of this path
    return recipe


_recipes = st.lists(st.tuples(st.integers(0, len(_PATHS) - 1), _values), min_size=1, max_size=3).map(_mutated)


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    yield from started_twin(tmp_path, monkeypatch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipe=_recipes)
def test_generated_recipes_are_accepted_or_refused_cleanly(twin: Twin, recipe: dict[str, Any]) -> None:
    before = dict(twin.plane.core.state.components)
    try:
        arn = twin.gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
    except ServiceError as error:
        assert error.code in ("ValidationException", "ConflictException"), error
        assert twin.plane.core.state.components == before
        return
    twin.gg.describe_component(arn=arn)
    twin.gg.get_component(arn=arn, recipeOutputFormat="YAML")
    twin.gg.list_components()
    try:
        twin.gg.resolve_component_candidates(
            platform={"name": "linux", "attributes": {"os": "linux"}},
            componentCandidates=[
                {"componentName": recipe["ComponentName"], "versionRequirements": {"g": "*"}}
            ],
        )
    except ServiceError as error:
        assert error.code == "ResourceNotFoundException"
    twin.gg.delete_component(arn=arn)


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(alphabet="0123456789.xX*^~<>=|- v", max_size=20),
    version=st.sampled_from(["0.0.1", "1.2.3", "2.0.0-rc.1"]),
)
def test_generated_ranges_parse_or_raise_bad_range(text: str, version: str) -> None:
    try:
        parsed = parse_range(text)
    except BadRange:
        return
    assert isinstance(parsed.admits(version), bool)
