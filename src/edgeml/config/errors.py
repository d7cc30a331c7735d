"""Errors of `edgeml config`: each names the stack, output or file that was wrong."""

from edgeml.errors import EdgemlError


class ConfigError(EdgemlError):
    """The configuration file cannot be read, is not ours, or is malformed."""


class StackError(EdgemlError):
    """A stack is missing, not in a usable state, or its outputs are not what the CDK app writes."""
