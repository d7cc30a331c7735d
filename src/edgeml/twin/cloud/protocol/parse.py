"""Turning a REST-JSON request into the input shape's members as Python values (the wire types checked).

Members come from the locations the model gives them: `uri` labels, `querystring`, `header`, `headers`
(a prefixed map), or the JSON body (or a `payload` member that is the whole body). A value of the wrong
wire type is a `RequestInvalid` naming the member; the model's constraints are checked afterwards by
`validate`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from edgeml.twin.cloud.protocol.errors import MemberProblem, RequestInvalid, cannot_parse
from edgeml.twin.cloud.protocol.errors import shown as show

_INTEGER_TEXT = re.compile(r"-?[0-9]+")
_INTEGER_TYPES = ("integer", "long", "short", "byte")
_FLOAT_TYPES = ("float", "double")


def _problem(path: str, value: Any, expected: str) -> RequestInvalid:
    shown = show(value)
    return RequestInvalid(
        [
            MemberProblem(
                path, f"Value {shown} at '{path}' failed to satisfy constraint: Member must be {expected}"
            )
        ]
    )


def _timestamp(value: Any, path: str, default_format: str, shape: Shape) -> datetime:
    fmt = shape.serialization.get("timestampFormat", default_format)
    if isinstance(value, bool):
        raise _problem(path, value, "a timestamp")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            if fmt == "rfc822":
                parsed = parsedate_to_datetime(value)
            elif fmt == "unixTimestamp":
                parsed = datetime.fromtimestamp(float(value), UTC)
            else:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, TypeError, OverflowError):
            raise _problem(path, value, f"a timestamp ({fmt})") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise _problem(path, value, "a timestamp")


def from_json(shape: Shape, value: Any, path: str) -> Any:
    """A JSON body value as the Python value of `shape`; the JSON type must be the one the shape takes."""
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise _problem(path, value, "an object")
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if wire in value and value[wire] is not None:
                out[name] = from_json(member, value[wire], _join(path, name))
        return out
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise _problem(path, value, "a list")
        return [
            from_json(shape.member, item, f"{path}.{index + 1}.member") for index, item in enumerate(value)
        ]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise _problem(path, value, "a map")
        return {
            from_json(shape.key, key, f"{path}.key"): from_json(shape.value, item, f"{path}.{key}")
            for key, item in value.items()
            if item is not None
        }
    if kind == "string":
        if not isinstance(value, str):
            raise _problem(path, value, "a string")
        if shape.serialization.get("jsonvalue"):
            try:
                json.loads(value)
            except ValueError:
                raise _problem(path, value, "a JSON document") from None
        return value
    if kind in _INTEGER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _problem(path, value, "an integer")
        return value
    if kind in _FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _problem(path, value, "a number")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _problem(path, value, "a boolean")
        return value
    if kind == "blob":
        if not isinstance(value, str):
            raise _problem(path, value, "base64-encoded binary data")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _problem(path, value, "base64-encoded binary data") from None
    if kind == "timestamp":
        return _timestamp(value, path, "unixTimestamp", shape)
    return value  # document types pass through as JSON


def from_text(shape: Shape, text: str, path: str, location: str) -> Any:
    """A path label, query value or header as the Python value of a scalar `shape`."""
    kind = shape.type_name
    if kind == "string":
        if shape.serialization.get("jsonvalue") and location == "header":
            try:
                return json.loads(base64.b64decode(text, validate=True))
            except (binascii.Error, ValueError):
                raise _problem(path, text, "base64-encoded JSON") from None
        return text
    if kind in _INTEGER_TYPES:
        if not _INTEGER_TEXT.fullmatch(text):
            raise _problem(path, text, "an integer")
        return int(text)
    if kind in _FLOAT_TYPES:
        try:
            return float(text)
        except ValueError:
            raise _problem(path, text, "a number") from None
    if kind == "boolean":
        if text not in ("true", "false"):
            raise _problem(path, text, "a boolean (true or false)")
        return text == "true"
    if kind == "timestamp":
        return _timestamp(text, path, "rfc822" if location == "header" else "iso8601", shape)
    if kind == "blob":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _problem(path, text, "base64-encoded binary data") from None
    raise _problem(path, text, f"a {kind} (not expressible in a {location})")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def parse_input(
    shape: StructureShape | None,
    labels: Mapping[str, str],
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The input members, keyed by their model names, from every location the model puts them."""
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    body_members: dict[str, Shape] = {}
    payload = shape.serialization.get("payload")
    bound_query: set[str] = set()
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in labels:
                params[name] = from_text(member, labels[wire], name, "uri")
        elif location == "querystring":
            if isinstance(member, MapShape):
                continue
            bound_query.add(wire)
            if wire in query:
                values = query[wire]
                if isinstance(member, ListShape):
                    params[name] = [from_text(member.member, v, name, "querystring") for v in values]
                else:
                    params[name] = from_text(member, values[0], name, "querystring")
        elif location == "header":
            text = headers.get(wire.lower())
            if text is not None:
                if isinstance(member, ListShape):
                    parts = [part.strip() for part in text.split(",")]
                    params[name] = [from_text(member.member, part, name, "header") for part in parts]
                else:
                    params[name] = from_text(member, text, name, "header")
        elif location == "headers":
            prefix = wire.lower()
            found = {key[len(prefix) :]: value for key, value in headers.items() if key.startswith(prefix)}
            if found:
                params[name] = found
        elif location in (None, "body") and name != payload:
            body_members[name] = member
    for name, member in shape.members.items():
        if isinstance(member, MapShape) and member.serialization.get("location") == "querystring":
            rest = {key: values[0] for key, values in query.items() if key not in bound_query}
            if rest:
                params[name] = rest
    if payload is not None:
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            if body:
                params[payload] = body if member.type_name == "blob" else body.decode("utf-8", "replace")
        elif body.strip():
            params[payload] = from_json(member, _json_body(body), payload)
    elif body_members and body.strip():
        document = _json_body(body)
        if not isinstance(document, dict):
            raise cannot_parse("", "The request body must be a JSON object")
        for name, member in body_members.items():
            wire = member.serialization.get("name", name)
            if wire in document and document[wire] is not None:
                params[name] = from_json(member, document[wire], name)
    return params


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise cannot_parse("", f"The request body is not valid JSON: {error}") from None
