"""gdk's JSON schemas (package data) and the one-line description of the first violation."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

RECIPE_SCHEMA = "gdk-1.6.2-recipe_schema.json"
CONFIG_SCHEMA = "gdk-1.6.2-config_schema.json"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """One of the schemas in edgeml/components/schemas/."""
    text = resources.files("edgeml.components").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def pointer(parts: list[str | int]) -> str:
    """RFC 6901 JSON pointer of a path inside a document ("" is the whole document)."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "".join(f"/{part}" for part in escaped)


def first_violation(document: Any, schema_name: str) -> tuple[list[str | int], str] | None:
    """(path, message) of the most relevant schema violation, or None when `document` is valid."""
    schema = load_schema(schema_name)
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return None
    return list(error.absolute_path), error.message
