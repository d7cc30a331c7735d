"""What is wrong with a request, found while parsing or validating it, before any backend sees it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MemberProblem:
    """One member that fails the model: its path in the input (`deploymentPolicies.failureHandlingPolicy`)
    and the constraint it breaks, worded as AWS words it."""

    path: str
    message: str


class RequestInvalid(Exception):
    """The request breaks the model: `reason` is GreengrassV2's ValidationExceptionReason."""

    def __init__(self, problems: list[MemberProblem], reason: str = "FIELD_VALIDATION_FAILED") -> None:
        self.problems = problems
        self.reason = reason
        super().__init__(self.summary())

    def summary(self) -> str:
        if self.reason == "CANNOT_PARSE":
            return "; ".join(problem.message for problem in self.problems)
        count = len(self.problems)
        noun = "error" if count == 1 else "errors"
        details = "; ".join(problem.message for problem in self.problems)
        return f"{count} validation {noun} detected: {details}"


def cannot_parse(path: str, message: str) -> RequestInvalid:
    return RequestInvalid([MemberProblem(path, message)], reason="CANNOT_PARSE")


class BackendContractBroken(Exception):
    """A backend answered with something its output shape does not allow: a twin bug, never a client error."""


def shown(value: Any) -> str:
    """A member's value as AWS quotes it in a validation message (cut at 80 characters)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"'{text}'"
