"""One REST-JSON service served from its botocore model: route, parse, validate, call the backend, serialise.

The backend contract (method names, kwargs, return values, ServiceError) is in
`edgeml.twin.cloud.service`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore import xform_name
from botocore.model import OperationModel, StructureShape

from edgeml.twin.cloud.protocol.errors import BackendContractBroken, RequestInvalid
from edgeml.twin.cloud.protocol.model import service_model
from edgeml.twin.cloud.protocol.parse import parse_input
from edgeml.twin.cloud.protocol.routes import Router
from edgeml.twin.cloud.protocol.serialize import Response, error, success
from edgeml.twin.cloud.protocol.validate import validate_input
from edgeml.twin.cloud.service import ServiceError

LOG = logging.getLogger(__name__)

# The error shapes a service uses for "your request is wrong", most specific first.
_VALIDATION_CODES = ("ValidationException", "InvalidRequestException")


@dataclass(frozen=True)
class Request:
    """An HTTP request as the router needs it: the raw (still percent-encoded) path, lower-case headers."""

    method: str
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class RestJsonService:
    """Serves the operations of one botocore service model (all, or those named) from `backend`.

    `lock` serialises backend calls (the endpoint is threaded; backends need not be)."""

    def __init__(
        self,
        model_name: str,
        backend: object,
        *,
        operations: Iterable[str] | None = None,
        lock: threading.Lock | threading.RLock | None = None,
    ) -> None:
        self.model = service_model(model_name)
        self.name = model_name
        self.router = Router(self.model, operations)
        self._backend = backend
        self._lock = lock or threading.RLock()
        present = set(self.model.shape_names)
        self._validation_code = next(
            (code for code in _VALIDATION_CODES if code in present), "ValidationException"
        )

    def resolve(self, request: Request) -> tuple[OperationModel, dict[str, str]] | None:
        return self.router.resolve(request.method, request.raw_path, request.query)

    def handle(self, request: Request) -> Response:
        """The service's answer to `request`, never an exception and never a 500 for a client error."""
        try:
            return self._handle(request)
        except Exception as failure:  # a twin bug in parsing or validation: still the service's error shape
            LOG.exception("%s: %s %s failed", self.name, request.method, request.raw_path)
            return self._internal(None, f"the twin failed: {type(failure).__name__}: {failure}")

    def _handle(self, request: Request) -> Response:
        resolved = self.resolve(request)
        if resolved is None:
            return self._invalid(
                None,
                f"No {self.name} operation is {request.method} {request.raw_path}",
                "UNKNOWN_OPERATION",
                [],
            )
        operation, labels = resolved
        return self.handle_operation(operation, labels, request)

    def handle_operation(
        self, operation: OperationModel, labels: dict[str, str], request: Request
    ) -> Response:
        input_shape = operation.input_shape
        try:
            params = parse_input(input_shape, labels, request.query, request.headers, request.body)
            validate_input(input_shape, params)
        except RequestInvalid as invalid:
            fields = [
                {"name": problem.path, "message": problem.message}
                for problem in invalid.problems
                if problem.path
            ]
            return self._invalid(operation, invalid.summary(), invalid.reason, fields)
        method = self._method(operation)
        if method is None:
            return self._invalid(
                operation,
                f"{operation.name} ({self.name}) is not supported by the twin",
                "UNKNOWN_OPERATION",
                [],
            )
        return self._call(operation, method, params)

    def _method(self, operation: OperationModel) -> Callable[..., dict[str, Any] | None] | None:
        method = getattr(self._backend, xform_name(operation.name), None)
        return method if callable(method) else None

    def _call(
        self, operation: OperationModel, method: Callable[..., dict[str, Any] | None], params: dict[str, Any]
    ) -> Response:
        try:
            with self._lock:
                output = method(**params) or {}
            return success(operation, output)
        except ServiceError as failure:
            try:
                return error(self.model, failure.code, failure.message, failure.members)
            except BackendContractBroken as broken:
                return self._internal(operation, f"the twin's error answer is malformed: {broken}")
        except BackendContractBroken as broken:
            return self._internal(operation, f"the twin's answer is malformed: {broken}")
        except Exception as failure:  # a twin bug: answered as the service would, with the cause logged
            LOG.exception("%s %s failed", self.name, operation.name)
            return self._internal(operation, f"the twin failed: {type(failure).__name__}: {failure}")

    def _internal(self, operation: OperationModel | None, message: str) -> Response:
        LOG.error("%s %s: %s", self.name, operation.name if operation else "-", message)
        code = (
            "InternalServerException"
            if "InternalServerException" in self.model.shape_names
            else "InternalFailure"
        )
        return error(self.model, code, message)

    def _invalid(
        self, operation: OperationModel | None, message: str, reason: str, fields: list[dict[str, str]]
    ) -> Response:
        code = self._validation_code
        if operation is not None:
            listed = {shape.name for shape in operation.error_shapes}
            code = next((name for name in _VALIDATION_CODES if name in listed), code)
        shape = self.model.shape_for(code)
        members: dict[str, Any] = {}
        if isinstance(shape, StructureShape):
            if "reason" in shape.members:
                members["reason"] = reason
            if "fields" in shape.members and fields:
                members["fields"] = fields
        return error(self.model, code, message, members)
