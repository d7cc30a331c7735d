"""Local checks of names and values AWS would reject, run before any upload or API call.

Each rule is written once here and used by every command that takes the value (`edgeml model compile
--neo`, `edgeml model package/digits`, `edgeml publish`). The checks are exactly AWS's documented rules,
so nothing AWS accepts is refused.
"""

from __future__ import annotations

import ipaddress
import json
import re

from edgeml.errors import EdgemlError


class InvalidAwsValue(EdgemlError):
    """A value AWS would reject (bucket name, role ARN, compiler options), named with its option."""


# General purpose bucket naming rules,
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

# SageMaker's RoleArn shape (botocore data sagemaker service-2.json: min 20, max 2048, this pattern) and
# IAM's role name limit (1-64 characters of [\w+=,.@-]); the path is everything between "role/" and the
# last "/".
_ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_ROLE_ARN_LENGTH = (20, 2048)
# SageMaker's CompilerOptions shape: a string of 3 to 1024 characters; Neo reads it as a JSON object.
_COMPILER_OPTIONS_LENGTH = (3, 1024)


def _bucket_problem(name: str) -> str | None:
    if not 3 <= len(name) <= 63:
        return f"must be 3 to 63 characters long (it is {len(name)})"
    if not _BUCKET_CHARS.fullmatch(name):
        return "may hold only lowercase letters, digits, '.' and '-'"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "must begin and end with a lowercase letter or a digit"
    if ".." in name:
        return "must not contain two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "must not be formatted as an IP address"
    prefix = next((item for item in _BUCKET_RESERVED_PREFIXES if name.startswith(item)), None)
    if prefix is not None:
        return f"must not start with the reserved prefix '{prefix}'"
    suffix = next((item for item in _BUCKET_RESERVED_SUFFIXES if name.endswith(item)), None)
    if suffix is not None:
        return f"must not end with the reserved suffix '{suffix}'"
    return None


def check_bucket_name(name: str, option: str = "--bucket") -> str:
    """Returns `name` if it is a valid S3 general purpose bucket name; else raises InvalidAwsValue."""
    problem = _bucket_problem(name)
    if problem is not None:
        raise InvalidAwsValue(f"{option} '{name}': not a valid S3 bucket name: {problem}")
    return name


def check_role_arn(arn: str, option: str = "--role-arn") -> str:
    """Returns `arn` if it is an IAM role ARN SageMaker accepts; else raises InvalidAwsValue."""
    example = "arn:aws:iam::123456789012:role/SageMakerRole"
    if not _ROLE_ARN_LENGTH[0] <= len(arn) <= _ROLE_ARN_LENGTH[1] or not _ROLE_ARN.fullmatch(arn):
        raise InvalidAwsValue(f"{option} '{arn}': not an IAM role ARN (expected e.g. {example})")
    role_name = arn.rsplit("/", 1)[-1]
    if not _ROLE_NAME.fullmatch(role_name):
        raise InvalidAwsValue(
            f"{option} '{arn}': role name '{role_name}' must be 1 to 64 letters, digits and +=,.@_-"
        )
    return arn


def check_compiler_options(text: str, option: str = "--compiler-options") -> str:
    """Returns `text` if it is a JSON object of a length SageMaker accepts; else raises InvalidAwsValue."""
    low, high = _COMPILER_OPTIONS_LENGTH
    if not low <= len(text) <= high:
        raise InvalidAwsValue(f"{option}: must be {low} to {high} characters of JSON (it is {len(text)})")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidAwsValue(f"{option} '{text}': not JSON ({error.msg} at character {error.pos})") from None
    if not isinstance(value, dict):
        raise InvalidAwsValue(f"{option} '{text}': must be a JSON object, e.g. '{{\"dtype\": \"float32\"}}'")
    return text
