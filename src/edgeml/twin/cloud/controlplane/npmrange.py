"""npm semver ranges, as the nucleus (semver4j in NPM mode) and ResolveComponentCandidates read them.

`>=1.0.0 <2.0.0`, `^1.2.3`, `~1.2`, `1.x`, `*`, `=1.0.1`, `1.0.0 - 1.2.0`, alternatives with `||`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import semver

_PART = r"(?:0|[1-9]\d*|[xX*])"
_PARTIAL = re.compile(
    rf"^v?(?P<major>{_PART})(?:\.(?P<minor>{_PART})(?:\.(?P<patch>{_PART})"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?)?)?$"
)
_COMPARATOR = re.compile(r"^(?P<op><=|>=|<|>|=|\^|~>|~)?\s*(?P<version>\S+)$")


class BadRange(ValueError):
    """Not an npm semver range."""


@dataclass(frozen=True)
class _Comparator:
    op: str
    version: semver.Version

    def admits(self, candidate: semver.Version) -> bool:
        order = candidate.compare(self.version)
        return {
            "<": order < 0,
            "<=": order <= 0,
            ">": order > 0,
            ">=": order >= 0,
            "=": order == 0,
        }[self.op]


def _wild(part: str | None) -> bool:
    return part is None or part in ("x", "X", "*")


def _partial(text: str) -> tuple[int | None, int | None, int | None, str | None]:
    match = _PARTIAL.match(text)
    if not match:
        raise BadRange(f"'{text}' is not a version")
    major, minor, patch = (match.group(key) for key in ("major", "minor", "patch"))
    if _wild(major):
        return None, None, None, None
    if _wild(minor):
        return int(major), None, None, None
    if _wild(patch):
        return int(major), int(minor), None, None
    return int(major), int(minor), int(patch), match.group("pre")


def _v(major: int, minor: int = 0, patch: int = 0, pre: str | None = None) -> semver.Version:
    return semver.Version(major, minor, patch, prerelease=pre)


def _expand(op: str, text: str) -> list[_Comparator]:
    major, minor, patch, pre = _partial(text)
    if major is None:
        return [] if op in ("", "=", ">=", "<=", "^", "~", "~>") else [_Comparator("<", _v(0, 0, 0, "0"))]
    if op in ("^", "~", "~>"):
        low = _v(major, minor or 0, patch or 0, pre)
        if op == "^":
            if major > 0 or minor is None:
                high = _v(major + 1, 0, 0, "0")
            elif minor > 0 or patch is None:
                high = _v(0, minor + 1, 0, "0")
            else:
                high = _v(0, 0, patch + 1, "0")
        else:
            high = _v(major + 1, 0, 0, "0") if minor is None else _v(major, minor + 1, 0, "0")
        return [_Comparator(">=", low), _Comparator("<", high)]
    if patch is not None:
        return [_Comparator(op or "=", _v(major, minor or 0, patch, pre))]
    # a partial version: 1 or 1.2 (x-ranges)
    low = _v(major, minor or 0, 0)
    high = _v(major + 1, 0, 0, "0") if minor is None else _v(major, minor + 1, 0, "0")
    if op in ("", "="):
        return [_Comparator(">=", low), _Comparator("<", high)]
    if op == ">":
        return [_Comparator(">=", high)]
    if op == ">=":
        return [_Comparator(">=", low)]
    if op == "<":
        return [_Comparator("<", low)]
    return [_Comparator("<", high)]  # <=


def _comparator_set(text: str) -> list[_Comparator]:
    text = text.strip()
    hyphen = re.match(r"^(\S+)\s+-\s+(\S+)$", text)
    if hyphen:
        low = _expand(">=", hyphen.group(1))
        top_major, top_minor, top_patch, top_pre = _partial(hyphen.group(2))
        if top_major is None:
            return low
        if top_patch is None:
            return low + _expand("<=", hyphen.group(2))
        return [*low, _Comparator("<=", _v(top_major, top_minor or 0, top_patch, top_pre))]
    text = re.sub(r"(<=|>=|<|>|=|\^|~>|~)\s+", r"\1", text)
    comparators: list[_Comparator] = []
    for token in text.split():
        match = _COMPARATOR.match(token)
        if not match:
            raise BadRange(f"'{token}' is not a comparator")
        comparators.extend(_expand(match.group("op") or "", match.group("version")))
    return comparators


@dataclass(frozen=True)
class NpmRange:
    """A parsed range: alternatives (`||`), each a conjunction of comparators."""

    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]

    def admits(self, version: str | semver.Version) -> bool:
        candidate = semver.Version.parse(version) if isinstance(version, str) else version
        for comparators in self.alternatives:
            if all(c.admits(candidate) for c in comparators) and _prerelease_allowed(candidate, comparators):
                return True
        return False


def _prerelease_allowed(candidate: semver.Version, comparators: tuple[_Comparator, ...]) -> bool:
    """npm: a prerelease matches only a set that names a prerelease of the same major.minor.patch."""
    if not candidate.prerelease:
        return True
    core = (candidate.major, candidate.minor, candidate.patch)
    return any(
        c.version.prerelease
        and c.version.prerelease != "0"
        and (c.version.major, c.version.minor, c.version.patch) == core
        for c in comparators
    )


def parse_range(text: str) -> NpmRange:
    """The range `text`, or BadRange naming what is wrong."""
    if not isinstance(text, str):
        raise BadRange("a version requirement must be a string")
    alternatives = tuple(tuple(_comparator_set(part)) for part in text.split("||"))
    return NpmRange(text=text, alternatives=alternatives)


def all_admit(requirements: list[NpmRange], version: str) -> bool:
    return all(requirement.admits(version) for requirement in requirements)
