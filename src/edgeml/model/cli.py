"""`edgeml model ...`: list targets, compile a model (locally or with SageMaker Neo), package variants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from edgeml.console import folding_table, make_console
from edgeml.errors import EdgemlError
from edgeml.model import aws_clients
from edgeml.model.compile.calibration import HOLDOUT_FRACTION, MAX_INT8_LOSS, Int8Report
from edgeml.model.compile.local import default_targets
from edgeml.model.compile.local_run import LocalRequest, compile_local_variants
from edgeml.model.compile.neo import NeoRequest, compile_neo
from edgeml.model.compile.neo import check_request as check_neo_request
from edgeml.model.compile.neo_poll import Backoff
from edgeml.model.evaluate_litert import LitertAgreement
from edgeml.model.package import PackagedComponent, PackageRequest, check_request, package
from edgeml.model.recipe import NEXT_PATCH
from edgeml.model.registry import APPROVAL_STATUSES, register
from edgeml.model.signature import parse_shape
from edgeml.model.targets import TARGETS
from edgeml.model.variants import VariantSet

app = typer.Typer(no_args_is_help=True, help="Compile and package models.")
console = make_console(stderr=True)


class BadOption(EdgemlError):
    """A combination of options that cannot work (e.g. --neo without --bucket)."""


@app.command("targets")
def targets_command() -> None:
    """List the compile targets and the Greengrass platform each variant runs on."""
    table = folding_table("target", "kind", "platform", "description")
    for target in TARGETS.values():
        platform = target.platform.slot if target.platform else "any (portable ONNX)"
        table.add_row(target.name, target.kind, platform, target.description)
    make_console().print(table)


class _NeoProgress:
    """Rich progress display: one line per Neo job with its latest status."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, target: str, job: str, status: str) -> None:
        text = f"{target}: {job} {status}"
        if target not in self._tasks:
            self._tasks[target] = self._progress.add_task(text, total=None)
        else:
            self._progress.update(self._tasks[target], description=text)


def _print_variants(variant_set: VariantSet, out: Path) -> None:
    table = folding_table("target", "framework", "quantisation", "top-1", "path")
    for variant in variant_set.variants:
        accuracy = "-" if variant.accuracy_top1 is None else f"{variant.accuracy_top1:.4f}"
        table.add_row(variant.target, variant.framework, variant.quantisation, accuracy, variant.path)
    make_console().print(table)
    console.print(f"variants in {out}", soft_wrap=True)


def _print_int8_report(report: Int8Report) -> None:
    if report.exceeded:
        console.print(f"[bold red]warning: cpu-int8 kept although over the limit: {report.summary()}[/]")
    else:
        console.print(report.summary(), soft_wrap=True)


def _print_litert_agreement(agreement: LitertAgreement) -> None:
    console.print(agreement.summary(), soft_wrap=True)


@app.command("compile")
def compile_command(
    source: Annotated[
        Path, typer.Argument(help="Source model (.onnx; .tflite as it is; .pt/.pth TorchScript for Neo).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Variants directory (variants.json + files).")],
    target: Annotated[
        list[str] | None,
        typer.Option("--target", "-t", help="Target id, repeatable (`edgeml model targets`)."),
    ] = None,
    neo: Annotated[
        bool, typer.Option("--neo/--local", help="Compile with SageMaker Neo or locally.")
    ] = False,
    input_shape: Annotated[
        str | None, typer.Option("--input-shape", help="Static input shape, e.g. 1,3,224,224.")
    ] = None,
    card: Annotated[Path | None, typer.Option("--card", help="Model card (default: beside SOURCE).")] = None,
    dataset: Annotated[
        str, typer.Option("--dataset", help="Local: none | digits (calibrate + score).")
    ] = "none",
    calibration: Annotated[
        Path | None,
        typer.Option(
            "--calibration",
            help="Local INT8: folder of images (sub-folders named by label: scored), .npy or .npz (x, y).",
        ),
    ] = None,
    holdout_fraction: Annotated[
        float, typer.Option("--holdout-fraction", help="Local INT8: share of --calibration held out.")
    ] = HOLDOUT_FRACTION,
    max_int8_loss: Annotated[
        float,
        typer.Option("--max-int8-loss", min=0, max=1, help="Local INT8: allowed top-1 disagreement."),
    ] = MAX_INT8_LOSS,
    int8_loss: Annotated[
        str, typer.Option("--int8-loss", help="Local INT8 over --max-int8-loss: refuse | warn.")
    ] = "refuse",
    bucket: Annotated[
        str | None, typer.Option("--bucket", envvar="EDGEML_BUCKET", help="Neo: S3 bucket.")
    ] = None,
    role_arn: Annotated[
        str | None, typer.Option("--role-arn", envvar="EDGEML_NEO_ROLE_ARN", help="Neo: SageMaker role.")
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="Neo: S3 key prefix.")] = "edgeml/neo",
    compiler_options: Annotated[
        str | None, typer.Option("--compiler-options", help="Neo: CompilerOptions JSON.")
    ] = None,
    framework_version: Annotated[
        str | None, typer.Option("--framework-version", help="Neo, PyTorch sources: version.")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="Neo: overall timeout, seconds.")
    ] = 3600.0,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Neo: first poll interval, seconds.")] = 5.0,
) -> None:
    """Compile SOURCE into per-target variants in --out (nothing is written unless every target succeeds)."""
    shape = parse_shape(input_shape) if input_shape else None
    if not neo:
        calibrated = dataset != "none" or calibration is not None
        defaults = default_targets(source, calibrated)
        request = LocalRequest(
            source,
            tuple(target or defaults),
            out,
            shape,
            dataset,
            card,
            calibration,
            holdout_fraction,
            max_int8_loss,
            int8_loss,
        )
        _print_variants(compile_local_variants(request, _print_int8_report, _print_litert_agreement), out)
        return
    if not target:
        raise BadOption("--neo needs at least one --target (see `edgeml model targets`)")
    if not bucket or not role_arn:
        raise BadOption("--neo needs --bucket and --role-arn (or EDGEML_BUCKET / EDGEML_NEO_ROLE_ARN)")
    neo_request = NeoRequest(
        source=source,
        targets=tuple(target),
        bucket=bucket,
        role_arn=role_arn,
        out_dir=out,
        key_prefix=prefix,
        input_shape=shape,
        framework_version=framework_version,
        compiler_options=compiler_options,
        card=card,
    )
    check_neo_request(neo_request)  # before the AWS clients: a bad option is named before a missing region
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with aws_clients.reported_as_edgeml_errors(), Progress(*columns, console=console) as progress:
        variant_set = compile_neo(
            neo_request,
            sagemaker=aws_clients.client("sagemaker"),
            s3=aws_clients.client("s3"),
            backoff=Backoff(initial_s=poll, timeout_s=timeout),
            on_status=_NeoProgress(progress),
        )
    _print_variants(variant_set, out)


def _parse_assignments(values: list[str]) -> dict[str, str]:
    assignments = {}
    for value in values:
        slot, sep, target = value.partition("=")
        if not sep or not slot or not target:
            raise BadOption(f"--assign '{value}': expected PLATFORM=TARGET, e.g. linux-amd64=cpu-int8")
        assignments[slot] = target
    return assignments


def _print_package(packaged: PackagedComponent) -> None:
    table = folding_table("manifest", "target", "framework", "quantisation", "top-1", "zip sha256")
    for artifact in packaged.artifacts:
        variant = artifact.variant
        accuracy = "-" if variant.accuracy_top1 is None else f"{variant.accuracy_top1:.4f}"
        table.add_row(
            artifact.platform.slot,
            variant.target,
            variant.framework,
            variant.quantisation,
            accuracy,
            artifact.sha256[:16],
        )
    make_console().print(table)
    console.print(f"{packaged.component} {packaged.version}: recipe {packaged.recipe_path}", soft_wrap=True)


@app.command("package")
def package_command(
    variants_dir: Annotated[Path, typer.Argument(help="Directory written by `edgeml model compile`.")],
    name: Annotated[str, typer.Option("--name", help="Model name: component com.edgeml.model.<Name>.")],
    bucket: Annotated[str, typer.Option("--bucket", envvar="EDGEML_BUCKET", help="S3 bucket of artifacts.")],
    out: Annotated[Path, typer.Option("--out", help="Output (greengrass-build layout).")],
    version: Annotated[
        str, typer.Option("--version", help=f"Semantic version or {NEXT_PATCH}.")
    ] = NEXT_PATCH,
    prefix: Annotated[str, typer.Option("--prefix", help="S3 key prefix of artifacts.")] = "",
    card: Annotated[
        Path | None, typer.Option("--card", help="Model card (default: in VARIANTS_DIR).")
    ] = None,
    assign: Annotated[
        list[str] | None, typer.Option("--assign", help="PLATFORM=TARGET override, repeatable.")
    ] = None,
    recipe_file: Annotated[
        Path | None, typer.Option("--recipe-file", help="Also write the recipe here (e.g. recipes/<C>.yaml).")
    ] = None,
    register_version: Annotated[
        bool, typer.Option("--register", help="Register in the SageMaker Model Registry.")
    ] = False,
    approval: Annotated[
        str, typer.Option("--approval", help=f"Registry approval: {' | '.join(APPROVAL_STATUSES)}.")
    ] = "PendingManualApproval",
) -> None:
    """Package VARIANTS_DIR into one component version: a zip per platform manifest and its recipe."""
    if register_version and approval not in APPROVAL_STATUSES:
        raise BadOption(f"--approval '{approval}': expected one of {', '.join(APPROVAL_STATUSES)}")
    registrations: list[str] = []
    request = PackageRequest(
        variants_dir=variants_dir,
        name=name,
        version=version,
        bucket=bucket,
        out_dir=out,
        card_path=card,
        key_prefix=prefix,
        assignments=_parse_assignments(assign or []),
        recipe_file=recipe_file,
    )
    if not register_version:
        _print_package(package(request))
        return
    check_request(request)
    with aws_clients.reported_as_edgeml_errors():  # no region or credentials: refused before any work
        sagemaker = aws_clients.client("sagemaker")

    def register_staged(staged: PackagedComponent) -> None:
        with aws_clients.reported_as_edgeml_errors():
            registration = register(sagemaker, staged, approval)
        arn = registration.model_package_arn
        registrations.append(f"registered in {registration.group}: {arn} ({approval})")

    # Registered before the package is moved into --out: a refused registration leaves nothing there.
    _print_package(package(request, before_commit=register_staged))
    console.print(registrations[0], soft_wrap=True)


@app.command("digits")
def digits_command(
    bucket: Annotated[str, typer.Option("--bucket", envvar="EDGEML_BUCKET", help="S3 bucket of artifacts.")],
    out: Annotated[Path, typer.Option("--out", help="Packaged output.")] = Path("build/model"),
    source: Annotated[Path, typer.Option("--source", help="Digits ONNX model.")] = Path(
        "models/digits/model.onnx"
    ),
    variants: Annotated[Path, typer.Option("--variants", help="Variants dir.")] = Path(
        "build/digits-variants"
    ),
    version: Annotated[
        str, typer.Option("--version", help=f"Semantic version or {NEXT_PATCH}.")
    ] = NEXT_PATCH,
    recipe_file: Annotated[
        Path | None, typer.Option("--recipe-file", help="Also write the recipe here.")
    ] = None,
) -> None:
    """Demo shortcut: compile the digits model locally (all four targets, digits data), then package it."""
    request = PackageRequest(variants, "Digits", version, bucket, out, recipe_file=recipe_file)
    check_request(request)  # every package option is checked before the compile replaces --variants
    local = LocalRequest(
        source, ("cpu-fp32", "cpu-opt", "cpu-fp16", "cpu-int8"), variants, (1, 1, 8, 8), "digits"
    )
    _print_variants(compile_local_variants(local), variants)
    _print_package(package(request))
