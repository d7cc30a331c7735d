"""Request routing by the model's URI templates: method + raw path (+ literal query keys) -> operation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from botocore.model import OperationModel, ServiceModel

_LABEL = re.compile(r"\{([^}+]+)(\+?)\}")


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    path: re.Pattern[str]
    literal_query: tuple[tuple[str, str | None], ...]
    literal_length: int

    def match(self, method: str, raw_path: str, query: Mapping[str, list[str]]) -> dict[str, str] | None:
        """The path labels (percent-decoded) when this route serves the request, else None."""
        if method != self.method:
            return None
        found = self.path.fullmatch(raw_path)
        if found is None:
            return None
        for key, value in self.literal_query:
            if key not in query or (value is not None and value not in query[key]):
                return None
        return {name: unquote(text) for name, text in found.groupdict().items()}


def _compile(operation: OperationModel) -> Route:
    template = operation.http["requestUri"]
    path_template, _, query_template = template.partition("?")
    pattern = ""
    position = 0
    for label in _LABEL.finditer(path_template):
        pattern += re.escape(path_template[position : label.start()])
        name = label.group(1)
        pattern += f"(?P<{_group(name)}>.+)" if label.group(2) else f"(?P<{_group(name)}>[^/]+)"
        position = label.end()
    pattern += re.escape(path_template[position:])
    literal_query: list[tuple[str, str | None]] = []
    for part in filter(None, query_template.split("&")):
        key, equals, value = part.partition("=")
        if "{" not in value:
            literal_query.append((key, value if equals else None))
    literal_length = len(_LABEL.sub("", path_template)) + len(literal_query)
    return Route(
        operation, operation.http["method"], re.compile(pattern), tuple(literal_query), literal_length
    )


def _group(label: str) -> str:
    """Regex group names must be identifiers; labels are (e.g. `thingName`), but be safe."""
    return re.sub(r"\W", "_", label)


class Router:
    """The operations of one service model, most literal template first (`/jobs/$next` before `{jobId}`)."""

    def __init__(self, model: ServiceModel, operations: Iterable[str] | None = None) -> None:
        names = list(operations) if operations is not None else list(model.operation_names)
        self._labels: dict[str, dict[str, str]] = {}
        routes = []
        for name in names:
            operation = model.operation_model(name)
            routes.append(_compile(operation))
            self._labels[name] = {
                _group(label): label for label, _ in _LABEL.findall(operation.http["requestUri"])
            }
        self.routes = sorted(routes, key=lambda route: -route.literal_length)

    def resolve(
        self, method: str, raw_path: str, query: Mapping[str, list[str]]
    ) -> tuple[OperationModel, dict[str, str]] | None:
        """(operation, labels by their model name) for the request, or None if no template matches."""
        for route in self.routes:
            labels = route.match(method, raw_path, query)
            if labels is not None:
                names = self._labels[route.operation.name]
                return route.operation, {names.get(group, group): value for group, value in labels.items()}
        return None
