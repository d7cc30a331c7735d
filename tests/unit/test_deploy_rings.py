"""Ring assignment: each device in exactly one ring, by a stable hash of its thing name."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.deploy.errors import SpecInvalid
from edgeml.deploy.plan import plan_rollout
from edgeml.deploy.rings import assign, bucket
from edgeml.deploy.spec import parse_spec


def _spec(shares: list[float], canary: bool = True) -> Any:
    rings: list[dict[str, Any]] = [{"name": "canary", "thingGroup": "lab"}] if canary else []
    rings += [{"name": f"r{i}", "parentGroup": "fleet", "share": s} for i, s in enumerate(shares)]
    return parse_spec({"name": "x", "components": {"c": {"version": "1.0.0"}}, "rings": rings}, "spec.yaml")


names = st.lists(
    st.from_regex(r"[a-zA-Z0-9_-]{1,20}", fullmatch=True), min_size=30, max_size=200, unique=True
)


@settings(max_examples=60, deadline=None)
@given(names, st.integers(min_value=0, max_value=10))
def test_every_device_is_in_exactly_one_ring_and_the_same_one_every_time(things: list[str], lab: int) -> None:
    spec = _spec([0.5, 0.5])
    members = {"fleet": things, "lab": things[:lab]}
    try:
        first = assign(spec, members)
    except SpecInvalid as error:  # a small fleet can leave a share ring empty: refused, never silently
        assert "is empty" in str(error)
        return
    flat = [t for ring in first.values() for t in ring]
    assert sorted(flat) == sorted(things) and len(flat) == len(set(flat))
    assert set(first["canary"]) == set(things[:lab])
    shuffled = {"fleet": list(reversed(things)), "lab": things[:lab]}
    assert assign(spec, shuffled) == first  # order of listing does not matter


def test_a_device_keeps_its_ring_when_the_fleet_grows() -> None:
    spec = _spec([0.1, 0.9], canary=False)
    small = [f"dev-{i}" for i in range(500)]
    large = small + [f"dev-{i}" for i in range(500, 5000)]
    before, after = assign(spec, {"fleet": small}), assign(spec, {"fleet": large})
    for ring in ("r0", "r1"):
        assert set(before[ring]) <= set(after[ring])


def test_shares_split_a_large_fleet_in_proportion() -> None:
    things = [f"core-{i:05d}" for i in range(10_000)]
    rings = assign(_spec([0.05, 0.15, 0.8], canary=False), {"fleet": things})
    for name, share in (("r0", 0.05), ("r1", 0.15), ("r2", 0.8)):
        assert abs(len(rings[name]) / len(things) - share) < 0.015


def test_share_rings_that_do_not_add_up_to_one_leave_the_rest_of_the_parent_out() -> None:
    things = [f"core-{i:04d}" for i in range(2000)]
    rings = assign(_spec([0.1, 0.2], canary=False), {"fleet": things})
    left_out = set(things) - set(rings["r0"]) - set(rings["r1"])
    assert all(bucket(t) >= 0.3 for t in left_out) and len(left_out) > 1000


def test_two_thing_group_rings_sharing_a_device_are_refused_naming_it() -> None:
    spec = parse_spec(
        {
            "name": "x",
            "components": {"c": {"version": "1.0.0"}},
            "rings": [{"name": "a", "thingGroup": "g1"}, {"name": "b", "thingGroup": "g2"}],
        },
        "spec.yaml",
    )
    with pytest.raises(SpecInvalid, match="'a' and 'b' overlap: thing t2 is in both"):
        assign(spec, {"g1": ["t1", "t2"], "g2": ["t2", "t3"]})


def test_an_empty_ring_is_refused() -> None:
    with pytest.raises(SpecInvalid, match="ring 'canary' is empty"):
        assign(_spec([1.0]), {"fleet": ["a", "b"], "lab": []})


def test_the_plan_says_what_each_ring_runs_before_and_after() -> None:
    spec = _spec([0.5, 0.5])
    things = [f"core-{i:03d}" for i in range(100)]
    current = {
        "canary": {
            "components": {"c": {"componentVersion": "0.9.0"}, "other": {"componentVersion": "2.0.0"}}
        },
        "r0": None,
        "r1": {"components": {"c": {"componentVersion": "1.0.0"}}},
    }
    plan = plan_rollout(spec, {"fleet": things, "lab": things[:3], "fleet-r0": things[50:]}, current)
    canary, r0, r1 = plan.rings
    assert canary.before == {"c": "0.9.0", "other": "2.0.0"} and canary.after == {
        "c": "1.0.0",
        "other": "2.0.0",
    }
    assert canary.changes == {"c": ("0.9.0", "1.0.0")}  # `other` stays in the ring's revision
    assert r0.before == {} and r0.changes == {"c": (None, "1.0.0")}
    assert r1.changes == {}
    assert set(r0.to_add) == set(r0.devices) - set(things[50:])
    assert set(r0.to_remove) == set(things[50:]) - set(r0.devices)
    assert plan.as_json()["devices"] == 100
