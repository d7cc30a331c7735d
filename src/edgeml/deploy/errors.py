"""Failures of `edgeml deploy`, each naming what was wrong."""

from edgeml.errors import EdgemlError


class DeployError(EdgemlError):
    """Base of the rollout errors."""


class SpecInvalid(DeployError):
    """A rollout spec that cannot be read, breaks the schema or names something that does not exist.

    The message starts with the spec file and the key at fault (`spec.yaml: rings[1].gate.maxErrorRate: ...`).
    """


class RolloutStateError(DeployError):
    """What AWS holds for a rollout does not allow the command (nothing to resume, a different spec, ...)."""


class GateFailed(DeployError):
    """A ring's health gate failed; the touched rings were rolled back (the report names metric, devices)."""
