"""`edgeml model ...`: compile and package models (filled in by the model pipeline)."""

import typer

app = typer.Typer(no_args_is_help=True)
