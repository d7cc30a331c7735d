"""Which ring each device is in: one ring per device, by a stable hash of its thing name.

A thing-group ring holds its group's members. The share rings of a parent group split the parent's other
members (those in no thing-group ring) by `bucket(thing)`, a number in [0, 1) from SHA-256 of the thing
name: ring k of a parent takes the buckets [s_1 + ... + s_(k-1), s_1 + ... + s_k). The bucket depends on
the name only, so a device stays in the same ring across rollouts and plans on any machine agree, and two
rings never ask one device for different versions. Two thing-group rings sharing a device are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from edgeml.deploy.errors import SpecInvalid
from edgeml.deploy.spec import RolloutSpec

_SCALE = float(1 << 64)


def bucket(thing_name: str) -> float:
    """A stable number in [0, 1) for a thing name (SHA-256, first 8 bytes)."""
    digest = hashlib.sha256(thing_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def assign(spec: RolloutSpec, members: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """{ring name: sorted thing names}; `members` maps each thing group the spec names to its things."""
    owner: dict[str, str] = {}
    rings: dict[str, list[str]] = {ring.name: [] for ring in spec.rings}
    for ring in spec.rings:
        if ring.thing_group is None:
            continue
        for thing in members.get(ring.thing_group, ()):
            if thing in owner:
                raise SpecInvalid(
                    f"{spec.source}: rings: {owner[thing]!r} and {ring.name!r} overlap: thing {thing} is in "
                    "both thing groups"
                )
            owner[thing] = ring.name
            rings[ring.name].append(thing)
    ranges: dict[str, list[tuple[float, float, str]]] = {}
    for ring in spec.rings:
        if ring.parent_group is None:
            continue
        taken = ranges.setdefault(ring.parent_group, [])
        start = taken[-1][1] if taken else 0.0
        taken.append((start, start + ring.share, ring.name))
    for parent, parent_ranges in ranges.items():
        for thing in members.get(parent, ()):
            if thing in owner:
                continue
            position = bucket(thing)
            for low, high, name in parent_ranges:
                if low <= position < high:
                    rings[name].append(thing)
                    break
    for ring in spec.rings:
        rings[ring.name].sort()
        if not rings[ring.name]:
            source = ring.thing_group or f"{ring.share:g} of {ring.parent_group}"
            raise SpecInvalid(f"{spec.source}: rings: ring {ring.name!r} is empty (no device in {source})")
    return rings
