"""The device twins `edgeml twin up --devices N` serves beside the cloud twin, as its state directory
records them: their roots under `<state dir>/devices/`, and `devices.json` (thing names, groups) while
they run, which `edgeml twin status` lists and `edgeml twin down` sizes its wait by."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from edgeml.errors import EdgemlError
from edgeml.twin.device.nucleus.paths import NucleusPaths

DEVICES_DIR = "devices"
RECORD_FILE = "devices.json"
# CreateThingGroup's thingGroupName (botocore iot service-2.json, ThingGroupName): 1-128 of [a-zA-Z0-9:_-]
_GROUP_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")


def parse_groups(values: Sequence[str]) -> list[str]:
    """`--groups a,b --groups c` -> [a, b, c] (each once, in order); a name IoT refuses -> ValueError."""
    groups: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not _GROUP_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a thing group name (1-128 of a-z A-Z 0-9 : _ -)")
            if name not in groups:
                groups.append(name)
    return groups


def devices_root(state_dir: Path) -> Path:
    return state_dir / DEVICES_DIR


def require_fresh(state_dir: Path) -> None:
    """Device roots of an earlier `up` are refused: a nucleus restarting from its root is not modelled,
    and starting empty devices on them would hide that the cloud believes they hold components."""
    root = devices_root(state_dir)
    if root.is_dir() and any(root.iterdir()):
        raise EdgemlError(
            f"{root} holds device twins of an earlier `up` (restarting a device from its root is not "
            f"modelled): move it away to start new devices, or `up` without --devices"
        )


def started_roots(state_dir: Path) -> list[Path]:
    """Device roots whose nucleus has started (it wrote its component states), by name."""
    root = devices_root(state_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if NucleusPaths(p).states_file.is_file())


def write_record(state_dir: Path, things: Sequence[str], groups: Sequence[str]) -> None:
    partial = state_dir / (RECORD_FILE + ".partial")
    partial.write_text(json.dumps({"things": list(things), "groups": list(groups)}) + "\n")
    partial.replace(state_dir / RECORD_FILE)


def clear_record(state_dir: Path) -> None:
    (state_dir / RECORD_FILE).unlink(missing_ok=True)


def recorded_things(state_dir: Path) -> list[str]:
    """The things of the devices being served now ([] when none, or the record is unreadable)."""
    try:
        record = json.loads((state_dir / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return []
    things = record.get("things") if isinstance(record, dict) else None
    return [str(thing) for thing in things] if isinstance(things, list) else []


def status_lines(state_dir: Path) -> Iterator[str]:
    """One line per device being served: its thing, root, and each component's version and state."""
    from edgeml.twin.device.cli import device_states

    things = recorded_things(state_dir)
    yield f"device twins ({len(things)})" + (f": under {devices_root(state_dir)}" if things else "")
    for thing in things:
        root = devices_root(state_dir) / thing
        try:
            states = device_states(root)
        except (EdgemlError, OSError, ValueError) as error:
            yield f"  {thing}: states unreadable ({error})"
            continue
        shown = ", ".join(
            f"{name} {entry.get('version', '?')} {entry.get('state', '?')}"
            for name, entry in sorted(states.items())
        )
        yield f"  {thing}: {shown}"
