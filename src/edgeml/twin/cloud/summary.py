"""What `edgeml twin status` prints: the twin's things, groups, components and deployments, read through
the public APIs with plain boto3 (what any user of the twin could call)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

_SHOWN = 10  # names listed per kind; the count is always complete


def _client(service: str, env: dict[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )


def _paged(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    for page in client.get_paginator(operation).paginate(**params):
        items.extend(page.get(key, []))
    return items


def _line(kind: str, names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN]) + (f", ... ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")
    return f"{kind} ({len(names)}): {shown}" if names else f"{kind} (0)"


def summarize(env: dict[str, str]) -> Iterator[str]:
    """One line per kind of resource; a kind the twin cannot list says why instead."""
    iot = _client("iot", env)
    greengrass = _client("greengrassv2", env)
    listings: list[tuple[str, Any, str, str, str, dict[str, Any]]] = [
        ("things", iot, "list_things", "things", "thingName", {}),
        ("thing groups", iot, "list_thing_groups", "thingGroups", "groupName", {}),
        ("components", greengrass, "list_components", "components", "componentName", {"scope": "PRIVATE"}),
        ("deployments", greengrass, "list_deployments", "deployments", "deploymentId", {}),
        ("core devices", greengrass, "list_core_devices", "coreDevices", "coreDeviceThingName", {}),
    ]
    for kind, client, operation, key, name, params in listings:
        try:
            items = _paged(client, operation, key, **params)
        except ClientError as error:
            details = error.response.get("Error", {})
            yield f"{kind}: cannot list ({details.get('Code', '?')}: {details.get('Message', '')})"
            continue
        except BotoCoreError as error:
            yield f"{kind}: cannot list ({error})"
            continue
        if kind == "deployments":
            names = [
                f"{item.get('deploymentName') or item[name]} -> {item.get('targetArn', '?')} "
                f"[{item.get('deploymentStatus', '?')}]"
                for item in items
            ]
        else:
            names = [str(item.get(name, "?")) for item in items]
        yield _line(kind, names)
