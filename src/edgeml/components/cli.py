"""`edgeml build` and `edgeml publish`: gdk's component build and publish for every components/<Name>/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeml.components.build import build_project, find_projects
from edgeml.components.modelproject import write_model_projects
from edgeml.components.publish import publish_project
from edgeml.console import make_console

ComponentsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Component names (or folder names under --components-dir); default: all.", show_default=False
    ),
]
ComponentsDir = Annotated[
    Path, typer.Option("--components-dir", help="Folder of gdk projects, one per component.")
]


def build_command(
    components: ComponentsArg = None,
    components_dir: ComponentsDir = Path("components"),
    model_package: Annotated[
        Path | None,
        typer.Option(
            "--model-package",
            help="Output of `edgeml model package --out`: write its model's gdk project and its inference "
            "app's (com.edgeml.Inference.<Model>) under --components-dir, then build those two.",
        ),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option("--model-version", help="With --model-package: the version (default: highest)."),
    ] = None,
) -> None:
    """Build components into <component>/greengrass-build/ exactly as `gdk component build` lays it out."""
    if model_version is not None and model_package is None:
        raise typer.BadParameter("needs --model-package", param_hint="--model-version")
    console = make_console()
    projects = []
    if model_package is not None:
        written = write_model_projects(components_dir, model_package, model_version)
        console.print(
            f"projects for {written.model} {written.version}: {written.model_project}, {written.app_project}",
            highlight=False,
            soft_wrap=True,
        )
        projects = [written.model_project, written.app_project]
    if components or model_package is None:
        projects += [p for p in find_projects(components_dir, components) if p not in projects]
    for project in projects:
        result = build_project(project)
        artifacts = ", ".join(path.name for path in result.artifacts) or "no artifacts"
        console.print(
            f"built {result.component} {result.version}: {result.recipe} ({artifacts})",
            highlight=False,
            soft_wrap=True,
        )


def publish_command(
    components: ComponentsArg = None,
    bucket: Annotated[
        str | None,
        typer.Option(help="S3 bucket for the artifacts; default: gdk-config's bucket-<region>-<account>."),
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="AWS Region; default: gdk-config's publish.region.")
    ] = None,
    components_dir: ComponentsDir = Path("components"),
) -> None:
    """Upload built artifacts to S3 and create component versions (NEXT_PATCH resolved in GreengrassV2)."""
    console = make_console()
    for project in find_projects(components_dir, components):
        result = publish_project(project, bucket=bucket, region=region)
        console.print(
            f"published {result.component} {result.version} ({result.state}): {result.arn}",
            highlight=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Adds the top-level build/publish commands to `app`."""
    app.command("build")(build_command)
    app.command("publish")(publish_command)
