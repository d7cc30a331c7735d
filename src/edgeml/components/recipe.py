"""Component recipes: load (YAML or JSON), validate against gdk's recipe schema, read and rewrite keys.

Recipe keys are case-insensitive for the nucleus and for gdk. gdk validates a recipe after lower-casing
every key at every depth (gdk/common/RecipeValidator.py `_convert_keys_to_lowercase`: DefaultConfiguration
and Setenv included, values untouched), and rewrites keys in place keeping the author's spelling
(CaseInsensitiveDict.update_value). `lower_keys`, `get_key` and `set_key` do the same here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgeml.components.errors import RecipeInvalid
from edgeml.components.schema import RECIPE_SCHEMA, first_violation, pointer

S3_PREFIX = "s3://"
# gdk's artifact URI placeholders, replaced by `gdk component publish` (and `edgeml publish`).
BUILD_URI_PREFIX = "s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION"
# gdk refuses to build a recipe file larger than this (gdk/common/consts.py MAX_RECIPE_FILE_SIZE_BYTES).
MAX_RECIPE_FILE_SIZE_BYTES = 16000


def lower_keys(value: Any) -> Any:
    """Every mapping key lower-cased, recursively, as gdk does before schema validation."""
    if isinstance(value, dict):
        return {str(key).lower(): lower_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [lower_keys(item) for item in value]
    return value


def find_key(mapping: dict[str, Any], key: str) -> str | None:
    """The spelling of `key` used in `mapping` (case-insensitive), or None."""
    wanted = key.lower()
    return next((existing for existing in mapping if str(existing).lower() == wanted), None)


def get_key(mapping: dict[str, Any], key: str, default: Any = None) -> Any:
    """mapping[key], case-insensitively."""
    existing = find_key(mapping, key)
    return default if existing is None else mapping[existing]


def set_key(mapping: dict[str, Any], key: str, value: Any) -> None:
    """Sets `key` keeping the spelling already in `mapping` (gdk's update_value)."""
    mapping[find_key(mapping, key) or key] = value


def _original_path(document: Any, lowered: list[str | int]) -> list[str | int]:
    """A path found in the lower-cased document, spelled as in the original one."""
    path: list[str | int] = []
    node = document
    for part in lowered:
        if isinstance(node, dict) and isinstance(part, str):
            key = find_key(node, part) or part
            path.append(key)
            node = node.get(key)
        else:
            path.append(part)
            node = (
                node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None
            )
    return path


@dataclass
class Recipe:
    """A recipe document and where it came from."""

    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(get_key(self.data, "ComponentName", ""))

    @property
    def version(self) -> str:
        return str(get_key(self.data, "ComponentVersion", ""))

    def artifacts(self) -> Iterator[dict[str, Any]]:
        """Every artifact mapping of every manifest."""
        for manifest in get_key(self.data, "Manifests", None) or []:
            if isinstance(manifest, dict):
                yield from (a for a in get_key(manifest, "Artifacts", None) or [] if isinstance(a, dict))

    def validate(self) -> None:
        """Raises RecipeInvalid naming the file and the JSON pointer of the first schema violation."""
        violation = first_violation(lower_keys(self.data), RECIPE_SCHEMA)
        if violation is not None:
            where, message = violation
            raise RecipeInvalid(f"{self.path}: {pointer(_original_path(self.data, where)) or '/'}: {message}")

    def dump(self, path: Path) -> None:
        """Writes the recipe as JSON (.json) or YAML (.yaml/.yml), key order kept, like gdk."""
        if path.suffix == ".json":
            text = json.dumps(self.data, indent=4) + "\n"
        else:
            text = yaml.safe_dump(self.data, sort_keys=False, default_flow_style=False, width=1000)
        path.write_text(text, encoding="utf-8")

    def text(self) -> str:
        """The recipe serialised in its own format (what CreateComponentVersion receives)."""
        if self.path.suffix == ".json":
            return json.dumps(self.data, indent=4) + "\n"
        return yaml.safe_dump(self.data, sort_keys=False, default_flow_style=False, width=1000)


def check_file_size(path: Path) -> None:
    """Raises RecipeInvalid when the recipe file is over gdk's size limit (comments count)."""
    size = path.stat().st_size
    if size > MAX_RECIPE_FILE_SIZE_BYTES:
        raise RecipeInvalid(f"{path}: {size} bytes, over gdk's limit of {MAX_RECIPE_FILE_SIZE_BYTES} bytes")


def load_recipe(path: Path) -> Recipe:
    """Reads a YAML or JSON recipe; raises RecipeInvalid when it is unreadable or not a mapping."""
    if path.suffix not in (".json", ".yaml", ".yml"):
        raise RecipeInvalid(f"{path}: a recipe must be .json, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RecipeInvalid(f"{path}: cannot read the recipe ({detail})") from error
    if not isinstance(data, dict):
        raise RecipeInvalid(f"{path}: a recipe is a mapping of keys, got {type(data).__name__}")
    return Recipe(path, data)
