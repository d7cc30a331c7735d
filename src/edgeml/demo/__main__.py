"""`python -m edgeml.demo` (scripts/demo): the main job end to end on the local twin.

Every option is checked before anything is created or emptied; errors are one line (exit 1), usage
errors exit 2, Ctrl-C exits 130 after the twins and the app are stopped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

from edgeml.cli import run_app
from edgeml.console import make_console, widen_help
from edgeml.demo.run import HOLDOUT_IMAGES, check_images, run_demo
from edgeml.demo.workdir import MARKER, caller_path, check_summary_path, check_work_folder
from edgeml.errors import EdgemlError

REPO = Path(os.environ.get("EDGEML_ROOT", Path(__file__).resolve().parents[3]))
DEFAULT_WORK = REPO / "build" / "demo"


class DemoFailed(EdgemlError):
    """A step of the demo failed (a wait timed out, the app refused an update)."""


def demo(
    work: Annotated[
        Path,
        typer.Option(
            "--work",
            help=f"Scratch folder, created by the demo and emptied on its next run (it holds {MARKER});"
            " a folder the demo did not create is refused unless empty. Relative to your working directory.",
        ),
    ] = DEFAULT_WORK,
    images: Annotated[
        int, typer.Option("--images", help=f"Held-out digit images to send (3..{HOLDOUT_IMAGES}).")
    ] = HOLDOUT_IMAGES,
    summary_json: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the summary here (default <work>/summary.json); a file that"
                     " is not an earlier demo summary is refused."),
    ] = None,
) -> None:
    """Model -> variants -> components published and deployed through the cloud twin to nucleus device
    twins -> results back in the cloud twin."""
    check_images(images)
    work_dir = check_work_folder(caller_path(work), REPO)
    summary_path = check_summary_path(
        caller_path(summary_json) if summary_json is not None else work_dir / "summary.json"
    )
    console = make_console()
    try:
        summary = run_demo(REPO, work_dir, images, console)
    except (ValueError, RuntimeError, TimeoutError, BotoCoreError, ClientError) as error:
        raise DemoFailed(str(error)) from error
    summary.write(summary_path)
    console.print(f"summary: {summary_path}", soft_wrap=True, highlight=False)
    rollout = summary.rollout
    if rollout and rollout["outcome"] != "completed":
        ended = f"{rollout['outcome']}: {rollout['failure']}"
        raise DemoFailed(f"the model update's rollout {rollout['name']} ended {ended}")
    if summary.app_exit_code != 0:
        unclean = sorted(thing for thing, clean in summary.apps_stopped_on_sigterm.items() if not clean)
        raise DemoFailed(f"the inference app did not stop cleanly on SIGTERM on {', '.join(unclean)}")


def main() -> None:
    widen_help()
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(demo)
    run_app(app)


if __name__ == "__main__":
    main()
    sys.exit(0)
