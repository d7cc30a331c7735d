"""A few hundred generated malformed requests (hypothesis), sent with plain boto3 (its client-side
validation off, so the server sees them) and as raw signed HTTP: each gets the service's validation error
(HTTP 400, ValidationException with `reason`/`fields` on GreengrassV2, InvalidRequestException on the
jobs data plane), a message naming the member, never a 500; and no backend call, so no state changed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.model import OperationModel, Shape, StructureShape
from cloud_twin_harness import UNCHECKED, RecordingControlPlane, client, endpoint_with, example_value, signed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.protocol.model import compiled_pattern, service_model

SERVICES = {"greengrassv2": "greengrass", "iot-jobs-data": "iot-jobs-data"}
VALIDATION_CODES = {"greengrassv2": "ValidationException", "iot-jobs-data": "InvalidRequestException"}
BAD_STRING = "not an arn!"


def _operations() -> list[tuple[str, OperationModel]]:
    found = []
    for service in SERVICES:
        model = service_model(service)
        for name in model.operation_names:
            operation = model.operation_model(name)
            if (
                operation.input_shape is not None
                and operation.input_shape.members
                and name != "StartCommandExecution"
            ):
                found.append((service, operation))
    return found


OPERATIONS = _operations()


def _sites(
    shape: StructureShape, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Shape, bool, str]]:
    """(path, shape, required, location) of every member reachable through structures (depth <= 3)."""
    sites = []
    for name, member in shape.members.items():
        location = member.serialization.get("location", "body") if not prefix else "body"
        path = (*prefix, name)
        sites.append((path, member, name in shape.required_members, location))
        if isinstance(member, StructureShape) and len(path) < 3 and not member.is_tagged_union:
            sites.extend(_sites(member, path))
    return sites


def _mutations(shape: Shape, required: bool, location: str) -> list[tuple[str, Any]]:
    """The malformed values this member can take, as (kind, value); `...` stands for "leave it out"."""
    options: list[tuple[str, Any]] = []
    meta = shape.metadata
    if required and location != "uri":
        options.append(("missing", ...))
    kind = shape.type_name
    if kind == "string":
        if shape.enum:
            options.append(("enum", "NOT_A_VALUE"))
        if meta.get("max") is not None and meta["max"] <= 4096:
            options.append(("too long", "a" * (meta["max"] + 1)))
        if meta.get("min", 0) >= 1 and location != "uri":
            options.append(("too short", ""))
        pattern = compiled_pattern(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and pattern.search(BAD_STRING) is None:
            options.append(("pattern", BAD_STRING))
        if location == "body":
            options.append(("type", 12345))
    elif kind in ("integer", "long"):
        if meta.get("min") is not None:
            options.append(("range", int(meta["min"]) - 1))
        if meta.get("max") is not None:
            options.append(("range", int(meta["max"]) + 1))
        options.append(("type", "twelve" if location != "body" else "12"))
    elif kind == "boolean":
        options.append(("type", "maybe" if location != "body" else 1))
    elif kind in ("structure", "map") and location == "body":
        options.append(("type", ["a list"]))
    elif kind == "list" and location == "body":
        options.append(("type", {"not": "a list"}))
        if meta.get("max") is not None and meta["max"] <= 300 and shape.member.type_name == "string":
            options.append(
                ("too long", [example_value(shape.member, required_only=True)] * (meta["max"] + 1))
            )
    elif kind == "blob" and location == "body":
        options.append(("type", "***not base64***"))
    return options


def _set(params: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = params
    for name in path[:-1]:
        target = target.setdefault(name, {})
    if value is ...:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value


def _wire(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


def _http_request(
    operation: OperationModel, params: dict[str, Any]
) -> tuple[str, str, bytes, dict[str, str]]:
    """The request botocore would send for `params`, built by hand so any JSON type can be sent."""
    shape = operation.input_shape
    assert shape is not None
    path, _, literal_query = operation.http["requestUri"].partition("?")
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    body: dict[str, Any] = {}
    for name, member in shape.members.items():
        if name not in params:
            continue
        value = params[name]
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if location == "uri":
            greedy = "{" + wire + "+}"
            path = (
                path.replace(greedy, quote(text, safe="/"))
                if greedy in path
                else path.replace("{" + wire + "}", quote(text, safe=""))
            )
        elif location == "querystring":
            values = value if isinstance(value, list) else [value]
            query.extend(
                (wire, str(item).lower() if isinstance(item, bool) else str(item)) for item in values
            )
        elif location == "header":
            headers[wire] = text
        else:
            body[wire] = _wire(value)
    target = path + ("?" + urlencode(query) if query else "")
    if literal_query:
        target += ("&" if query else "?") + literal_query
    data = json.dumps(body).encode() if body or operation.http["method"] in ("POST", "PUT", "PATCH") else b""
    return operation.http["method"], target, data, headers


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, OperationModel, dict[str, Any], str, tuple[str, ...]]:
    service, operation = draw(st.sampled_from(OPERATIONS))
    assert operation.input_shape is not None
    sites = [
        (path, shape, required, location, mutation)
        for path, shape, required, location in _sites(operation.input_shape)
        for mutation in _mutations(shape, required, location)
    ]
    if not sites:
        return draw(malformed())
    path, _, _, _, (kind, value) = draw(st.sampled_from(sites))
    params = example_value(operation.input_shape, required_only=draw(st.booleans()))
    _set(params, path, value)
    return service, operation, params, kind, path


@pytest.fixture(scope="module")
def recording(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[CloudEndpoint, RecordingControlPlane]]:
    control_plane = RecordingControlPlane()
    with endpoint_with(
        tmp_path_factory.mktemp("bad"), lambda state_dir, clock, moto_iot: control_plane
    ) as endpoint:
        yield endpoint, control_plane


def _check_refusal(
    service: str, status: int, code: str, message: str, answer: dict[str, Any], path: tuple[str, ...]
):
    assert status == 400, (status, code, message)
    assert code == VALIDATION_CODES[service]
    named = ".".join(path)
    assert named in message, message
    if service == "greengrassv2":
        assert answer["reason"] in ("FIELD_VALIDATION_FAILED", "CANNOT_PARSE")
        assert named in [field["name"] for field in answer.get("fields", [])]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed())
def test_malformed_raw_requests_get_the_services_validation_error_and_change_nothing(recording, case):
    endpoint, control_plane = recording
    service, operation, params, _, path = case
    calls_before = control_plane.backend_calls()
    method, target, body, headers = _http_request(operation, params)
    status, answer_headers, answer = signed(endpoint, SERVICES[service], method, target, body, **headers)
    document = json.loads(answer)
    code = answer_headers.get("x-amzn-errortype", "")
    _check_refusal(service, status, code, document.get("message", ""), document, path)
    assert control_plane.backend_calls() == calls_before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed().filter(lambda case: case[3] != "type"))
def test_malformed_boto3_calls_get_the_services_validation_error_and_change_nothing(recording, case):
    endpoint, control_plane = recording
    service, operation, params, _, path = case
    calls_before = control_plane.backend_calls()
    with pytest.raises(ClientError) as raised:
        getattr(client(endpoint, service, UNCHECKED), xform_name(operation.name))(**params)
    response = raised.value.response
    _check_refusal(
        service,
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
        response,
        path,
    )
    assert control_plane.backend_calls() == calls_before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(st.binary(min_size=1, max_size=64), st.sampled_from([b"[1, 2]", b"42", b'"text"', b"{"]))
)
def test_bodies_that_are_not_a_json_object_cannot_be_parsed(recording, body):
    endpoint, control_plane = recording
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        return
    calls_before = control_plane.backend_calls()
    status, headers, answer = signed(endpoint, "greengrass", "POST", "/greengrass/v2/deployments", body)
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationException"
    refusal = json.loads(answer)
    if body.strip():
        assert refusal["reason"] == "CANNOT_PARSE"
    else:  # only whitespace: an empty body, so the required member is what is missing
        assert refusal["reason"] == "FIELD_VALIDATION_FAILED"
        assert [field["name"] for field in refusal["fields"]] == ["targetArn"]
    assert control_plane.backend_calls() == calls_before
