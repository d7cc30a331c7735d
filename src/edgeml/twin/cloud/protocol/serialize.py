"""Serialising a backend's answer with the model: status code, header members, the JSON (or payload) body;
and error responses as botocore's REST-JSON parser reads them (`x-amzn-ErrorType` + a JSON body)."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from edgeml.twin.cloud.protocol.errors import BackendContractBroken
from edgeml.twin.cloud.protocol.model import error_status


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _epoch(value: Any, path: str) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise BackendContractBroken(f"{path}: naive datetime (the contract wants aware ones)")
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise BackendContractBroken(f"{path}: {value!r} is not a timestamp")


def to_json(shape: Shape, value: Any, path: str) -> Any:
    """A backend's Python value as the JSON the shape puts on the wire; BackendContractBroken if it cannot."""
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise BackendContractBroken(f"{path}: {type(value).__name__} where {shape.name} wants a dict")
        unknown = set(value) - set(shape.members)
        if unknown:
            raise BackendContractBroken(f"{path}: {sorted(unknown)} are not members of {shape.name}")
        return {
            shape.members[name].serialization.get("name", name): to_json(
                shape.members[name], item, f"{path}.{name}"
            )
            for name, item in value.items()
            if item is not None
        }
    if isinstance(shape, ListShape):
        if not isinstance(value, (list, tuple)):
            raise BackendContractBroken(f"{path}: {type(value).__name__} where {shape.name} wants a list")
        return [to_json(shape.member, item, f"{path}[]") for item in value]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise BackendContractBroken(f"{path}: {type(value).__name__} where {shape.name} wants a dict")
        return {str(key): to_json(shape.value, item, f"{path}.{key}") for key, item in value.items()}
    kind = shape.type_name
    if kind == "blob":
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(value, (bytes, bytearray)):
            raise BackendContractBroken(f"{path}: {type(value).__name__} where a blob wants bytes")
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "timestamp":
        fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
        seconds = _epoch(value, path)
        if fmt == "iso8601":
            return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
        return seconds
    if kind == "string" and not isinstance(value, str):
        raise BackendContractBroken(f"{path}: {value!r} where {shape.name} wants a string")
    if kind == "boolean" and not isinstance(value, bool):
        raise BackendContractBroken(f"{path}: {value!r} where {shape.name} wants a boolean")
    if kind in ("integer", "long") and (isinstance(value, bool) or not isinstance(value, int)):
        raise BackendContractBroken(f"{path}: {value!r} where {shape.name} wants an integer")
    return value


def _header_text(shape: Shape, value: Any, path: str) -> str:
    if shape.type_name == "timestamp":
        return format_datetime(
            value if isinstance(value, datetime) else datetime.fromtimestamp(_epoch(value, path)), usegmt=True
        )
    if shape.type_name == "boolean":
        return "true" if value else "false"
    if shape.serialization.get("jsonvalue"):
        return base64.b64encode(json.dumps(value).encode()).decode("ascii")
    return str(value)


def _request_id() -> str:
    return str(uuid.uuid4())


def success(operation: OperationModel, output: dict[str, Any]) -> Response:
    """The operation's answer: its model status code, header members as headers, the rest as the body."""
    status = int(operation.http.get("responseCode", 200))
    headers = {"x-amzn-RequestId": _request_id()}
    shape = operation.output_shape
    if shape is None:
        if output:
            raise BackendContractBroken(
                f"{operation.name} has no output, the backend returned {sorted(output)}"
            )
        return Response(status, headers)
    payload = shape.serialization.get("payload")
    body: dict[str, Any] = {}
    for name, value in output.items():
        if name not in shape.members:
            raise BackendContractBroken(f"{operation.name}: {name!r} is not a member of {shape.name}")
        if value is None:
            continue
        member = shape.members[name]
        location = member.serialization.get("location")
        if location == "header":
            headers[member.serialization.get("name", name)] = _header_text(member, value, name)
        elif location == "headers":
            prefix = member.serialization.get("name", "")
            headers.update({f"{prefix}{key}": str(item) for key, item in value.items()})
        elif location == "statusCode":
            status = int(value)
        elif name == payload:
            if member.type_name in ("blob", "string"):
                data = value if isinstance(value, bytes) else str(value).encode()
                return Response(status, {**headers, "Content-Type": "application/octet-stream"}, data)
            body = to_json(member, value, name)
        else:
            body[member.serialization.get("name", name)] = to_json(member, value, name)
    if status == 204:
        return Response(status, headers)
    headers["Content-Type"] = "application/json"
    return Response(status, headers, json.dumps(body).encode())


def error(model: ServiceModel, code: str, message: str, members: dict[str, Any] | None = None) -> Response:
    """An error as the service answers it: the model's status for the shape, its members in the body."""
    status = error_status(model, code)
    headers = {
        "x-amzn-RequestId": _request_id(),
        "x-amzn-ErrorType": code,
        "Content-Type": "application/json",
    }
    body: dict[str, Any] = {"message": message}
    shape = model.shape_for(code) if code in model.shape_names else None
    for name, value in (members or {}).items():
        if value is None:
            continue
        if not isinstance(shape, StructureShape) or name not in shape.members:
            raise BackendContractBroken(f"{code} has no member {name!r}")
        member = shape.members[name]
        if member.serialization.get("location") == "header":
            headers[member.serialization.get("name", name)] = _header_text(member, value, name)
        else:
            body[member.serialization.get("name", name)] = to_json(member, value, name)
    if isinstance(shape, StructureShape) and "message" not in shape.members and "Message" in shape.members:
        body["Message"] = body.pop("message")
    return Response(status, headers, json.dumps(body).encode())
