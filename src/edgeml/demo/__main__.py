"""`python -m edgeml.demo` (scripts/demo): the main job end to end on the local twin."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeml.demo.run import HOLDOUT_IMAGES, run_demo
from edgeml.errors import EdgemlError
from edgeml.twin.loopback import WaitTimedOut

REPO = Path(os.environ.get("EDGEML_ROOT", Path(__file__).resolve().parents[3]))


def demo(
    work: Annotated[Path, typer.Option("--work", help="Scratch folder (emptied first).")] = REPO
    / "build"
    / "demo",
    images: Annotated[
        int, typer.Option("--images", help=f"Held-out digit images to send (3..{HOLDOUT_IMAGES}).")
    ] = HOLDOUT_IMAGES,
    summary_json: Annotated[
        Path | None, typer.Option("--json", help="Also write the summary here (default <work>/summary.json).")
    ] = None,
) -> None:
    """Model -> variants -> components -> simulated core device -> results in the cloud twin."""
    console = Console()
    try:
        summary = run_demo(REPO, work.resolve(), images, console)
    except (EdgemlError, ValueError, WaitTimedOut) as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
    path = summary_json or work / "summary.json"
    summary.write(path)
    console.print(f"summary: {path}")
    if summary.app_exit_code != 0:
        sys.exit(1)


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(demo)
    app()


if __name__ == "__main__":
    main()
