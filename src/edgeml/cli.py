"""The `edgeml` command: one sub-command group per stage of the data flow."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from edgeml.errors import EdgemlError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Edge ML on AWS IoT Greengrass v2.")


def _register() -> None:
    """Attach each stage's sub-commands. Imported lazily so a missing optional extra fails late."""
    from edgeml.components.cli import register as register_components
    from edgeml.model.cli import app as model_app

    app.add_typer(model_app, name="model", help="Compile and package models.")
    register_components(app)


def main() -> None:
    """Entry point: runs the app and turns EdgemlError into one line on stderr and exit code 1."""
    _register()
    try:
        app(standalone_mode=False)
    except EdgemlError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Abort:
        sys.exit(130)
    except Exception as error:  # click usage errors carry their own exit code
        code = getattr(error, "exit_code", None)
        if isinstance(code, int):
            show = getattr(error, "show", None)
            if callable(show):
                show()
            sys.exit(code)
        raise


if __name__ == "__main__":
    main()
