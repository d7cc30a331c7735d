"""`edgeml build` and `edgeml publish` (filled in by the components work)."""

import typer


def register(app: typer.Typer) -> None:
    """Adds the top-level build/publish commands to `app`."""
