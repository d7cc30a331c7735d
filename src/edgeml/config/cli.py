"""`edgeml config`: write the CLI's configuration from the CDK stacks' outputs, and show it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeml.config import store
from edgeml.config.errors import StackError
from edgeml.console import folding_table, make_console

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The account the CLI talks to.")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Configuration file (default: $EDGEML_CONFIG or ~/.config/edgeml/config.json)."
    ),
]


def _cloudformation(region: str | None) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.client("cloudformation", region_name=region)
    except BotoCoreError as error:
        raise StackError(f"cannot reach CloudFormation: {error} (pass --region or set AWS_REGION)") from None


@app.command("from-stack")
def from_stack(
    stacks: Annotated[list[str], typer.Argument(help="Stack names, e.g. Edgeml-Artifacts Edgeml-Fleet ...")],
    region: Annotated[str | None, typer.Option("--region", help="Region of the stacks.")] = None,
    config: ConfigOption = None,
) -> None:
    """Read the stacks' outputs and write them to the configuration file (merged with what it holds)."""
    from edgeml.config.fromstack import read_stacks

    path = config or store.default_path()
    base = store.existing(path)  # refuses a file that is not ours before anything is read
    result = read_stacks(_cloudformation(region), stacks, base)
    store.write(path, result)
    make_console().print(
        f"wrote {path} ({result.account}, {result.region}; stacks: {', '.join(result.stacks)})"
    )


@app.command("show")
def show(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the file's JSON.")] = False,
) -> None:
    """Print the configuration."""
    path = config or store.default_path()
    current = store.read(path)
    if as_json:
        print(json.dumps(current.to_json(), indent=2, sort_keys=True))
        return
    table = folding_table("key", "value", title=str(path))
    for key, value in vars(current).items():
        text = (
            "-" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        )
        table.add_row(key, text)
    make_console().print(table)
