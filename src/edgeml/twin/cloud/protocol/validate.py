"""Every constraint the model expresses, checked on parsed input: required members, unions, enums,
lengths, patterns and ranges. All problems are collected, as AWS reports them ("2 validation errors
detected: ..."), each naming its member."""

from __future__ import annotations

from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from edgeml.twin.cloud.protocol.errors import MemberProblem, RequestInvalid, shown
from edgeml.twin.cloud.protocol.model import compiled_pattern


def validate_input(shape: StructureShape | None, params: dict[str, Any]) -> None:
    """Raises RequestInvalid listing every member of `params` that breaks `shape`'s constraints."""
    if shape is None:
        return
    problems: list[MemberProblem] = []
    _check(shape, params, "", problems)
    if problems:
        raise RequestInvalid(problems)


def _fail(problems: list[MemberProblem], path: str, value: Any, constraint: str) -> None:
    quoted = "null" if value is None else shown(value if isinstance(value, (str, int, float)) else str(value))
    message = f"Value {quoted} at '{path}' failed to satisfy constraint: Member must {constraint}"
    problems.append(MemberProblem(path, message))


def _check(shape: Shape, value: Any, path: str, problems: list[MemberProblem]) -> None:
    if isinstance(shape, StructureShape):
        _check_structure(shape, value, path, problems)
    elif isinstance(shape, ListShape):
        _check_size(shape, len(value), value, path, problems, "have length")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}.{index + 1}.member", problems)
    elif isinstance(shape, MapShape):
        _check_size(shape, len(value), value, path, problems, "have length")
        for key, item in value.items():
            _check(shape.key, key, f"{path}.key", problems)
            _check(shape.value, item, f"{path}.{key}", problems)
    elif shape.type_name == "string":
        _check_string(shape, value, path, problems)
    elif shape.type_name == "blob":
        _check_size(shape, len(value), value, path, problems, "have length")
    elif shape.type_name in ("integer", "long", "short", "byte", "float", "double"):
        _check_range(shape, value, path, problems)


def _check_structure(
    shape: StructureShape, value: dict[str, Any], path: str, problems: list[MemberProblem]
) -> None:
    for name in shape.required_members:
        if name not in value:
            _fail(problems, _join(path, name), None, "not be null")
    if shape.is_tagged_union and len(value) != 1:
        names = ", ".join(shape.members)
        _fail(problems, path or shape.name, sorted(value), f"have exactly one of these members set: {names}")
    for name, item in value.items():
        _check(shape.members[name], item, _join(path, name), problems)


def _check_string(shape: Shape, value: str, path: str, problems: list[MemberProblem]) -> None:
    if shape.enum and value not in shape.enum:
        _fail(problems, path, value, f"satisfy enum value set: [{', '.join(shape.enum)}]")
        return
    _check_size(shape, len(value), value, path, problems, "have length")
    pattern = shape.metadata.get("pattern")
    if pattern is not None:
        compiled = compiled_pattern(pattern)
        if compiled is not None and compiled.search(value) is None:
            _fail(problems, path, value, f"satisfy regular expression pattern: {pattern}")


def _check_size(
    shape: Shape, size: int, value: Any, path: str, problems: list[MemberProblem], what: str
) -> None:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if low is not None and size < low:
        _fail(problems, path, value, f"{what} greater than or equal to {low}")
    if high is not None and size > high:
        _fail(problems, path, value, f"{what} less than or equal to {high}")


def _check_range(shape: Shape, value: float, path: str, problems: list[MemberProblem]) -> None:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if low is not None and value < low:
        _fail(problems, path, value, f"have value greater than or equal to {low}")
    if high is not None and value > high:
        _fail(problems, path, value, f"have value less than or equal to {high}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
