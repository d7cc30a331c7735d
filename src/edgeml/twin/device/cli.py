"""`edgeml twin device logs|status`: a device twin's component logs (logs/<component>.log, as on a
nucleus) and component states, read from its root directory (the process running it may be another)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgeml.errors import EdgemlError
from edgeml.twin.device.nucleus.paths import NucleusPaths

app = typer.Typer(help="Device twins (simulated Greengrass nuclei): component logs and states.",
                  no_args_is_help=True)
Root = Annotated[Path, typer.Option("--root", help="The device twin's root directory.")]


def _paths(root: Path) -> NucleusPaths:
    paths = NucleusPaths(root)
    if not paths.states_file.is_file():
        raise EdgemlError(f"{root}: not a device twin's root (no {paths.states_file.relative_to(root)})")
    return paths


def device_states(root: Path) -> dict[str, dict[str, str]]:
    """component -> {version, state, statusCodes} as the device last wrote them."""
    data: dict[str, dict[str, str]] = json.loads(_paths(root).states_file.read_text(encoding="utf-8"))
    return data


@app.command()
def status(root: Root) -> None:
    """Each component's version and lifecycle state."""
    states = device_states(root)
    width = max((len(name) for name in states), default=9)
    typer.echo(f"{'component':<{width}}  {'version':<10}  state")
    for name in sorted(states):
        entry = states[name]
        typer.echo(f"{name:<{width}}  {entry['version']:<10}  {entry['state']}")


@app.command()
def logs(root: Root, component: Annotated[str, typer.Argument(help="Component name.")],
         lines: Annotated[int, typer.Option("--lines", min=1, help="Last lines to show.")] = 50) -> None:
    """The last lines of logs/<component>.log."""
    paths = _paths(root)
    log = paths.log_path(component)
    if not log.is_file():
        known = ", ".join(sorted(p.stem for p in log.parent.glob("*.log"))) or "none"
        raise EdgemlError(f"no log for {component} on this device (logs: {known})")
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]:
        typer.echo(line)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="device")
