"""Reads the CDK stacks' outputs through CloudFormation (plain boto3) into an AccountConfig."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from edgeml.config.errors import StackError
from edgeml.config.outputs import BY_KEY
from edgeml.config.store import AccountConfig

# Stack states whose outputs describe deployed resources (CloudFormation StackStatus enum).
USABLE_STATES = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}


def describe(cloudformation: Any, name: str) -> dict[str, Any]:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        if "does not exist" in message:
            raise StackError(f"stack {name} does not exist in {cloudformation.meta.region_name}") from None
        raise StackError(f"stack {name}: {message}") from None
    except BotoCoreError as error:
        raise StackError(f"stack {name}: {error}") from None
    if not stacks:
        raise StackError(f"stack {name} does not exist in {cloudformation.meta.region_name}")
    stack: dict[str, Any] = stacks[0]
    return stack


def read_stacks(cloudformation: Any, names: list[str], base: AccountConfig | None = None) -> AccountConfig:
    """Every known output of each stack; `base` (same account and region) keeps what these do not set."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    where: tuple[str, str] | None = None
    for name in names:
        stack = describe(cloudformation, name)
        status = stack.get("StackStatus", "")
        if status not in USABLE_STATES:
            raise StackError(f"stack {name} is {status}: its outputs do not describe deployed resources")
        # arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>
        parts = str(stack.get("StackId", "")).split(":")
        if len(parts) < 6:
            raise StackError(f"stack {name}: unexpected StackId {stack.get('StackId')!r}")
        region, account = parts[3], parts[4]
        if where is not None and where != (region, account):
            raise StackError(f"stack {name} is in {region}/{account}, the others in {where[0]}/{where[1]}")
        where = (region, account)
        found = 0
        for item in stack.get("Outputs", []):
            spec = BY_KEY.get(item.get("OutputKey", ""))
            if spec is None:
                continue
            found += 1
            value: Any = item.get("OutputValue", "")
            if spec.json:
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    raise StackError(f"stack {name}: output {spec.key} is not JSON: {value!r}") from None
            if spec.field in values and values[spec.field] != value:
                raise StackError(f"output {spec.key} differs between stacks {sources[spec.field]} and {name}")
            values[spec.field] = value
            sources[spec.field] = name
        if not found:
            raise StackError(f"stack {name} has none of the edgeml outputs (is it a stack of infra/?)")
    assert where is not None
    region, account = where
    merged: dict[str, Any] = {}
    stacks = list(names)
    if base is not None and (base.region, base.account) == (region, account):
        merged = {key: value for key, value in vars(base).items() if value is not None}
        stacks = sorted(set(base.stacks) | set(names))
    merged.update(values)
    merged.update({"region": region, "account": account, "stacks": stacks})
    return AccountConfig(**merged)
