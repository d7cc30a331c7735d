"""`edgeml deploy plan|start|resume|status|promote|rollback|cancel SPEC`: staged rollouts from a spec file.

Every command reads where the rollout stands from AWS (deployment tags and revisions), so any of them can
run from any machine with the account's credentials; the clients are plain boto3 (AWS_ENDPOINT_URL points
them at the cloud twin).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.progress import Progress, TaskID, TextColumn

from edgeml.console import make_console
from edgeml.deploy.aws import Clients, call_failed, pages
from edgeml.deploy.clock import WallClock
from edgeml.deploy.errors import DeployError, GateFailed, RolloutStateError
from edgeml.deploy.orchestrator import Event, Orchestrator, RunRecord
from edgeml.deploy.plan import Plan, check_and_plan
from edgeml.deploy.report import write_reports
from edgeml.deploy.spec import RolloutSpec, load_spec
from edgeml.deploy.state import read_state

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Staged rollouts gated on model health.")

SpecPath = Annotated[Path, typer.Argument(help="Rollout spec (YAML).", show_default=False)]
Region = Annotated[str | None, typer.Option("--region", help="AWS region (default: the SDK's).")]
ReportDir = Annotated[Path, typer.Option("--report-dir", help="Folder for the run's JSON and HTML reports.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_REPORTS = Path("rollout-reports")
COLUMNS = ("QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "CANCELED")


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="deploy", help="Staged rollouts to rings of core devices, gated on health.")


def _load(path: Path) -> RolloutSpec:
    return load_spec(path)


@contextmanager
def _aws_errors() -> Iterator[None]:
    """Any AWS or SDK failure not already turned into a DeployError: one line naming the call's answer."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise call_failed("AWS", error) from None


def _print_plan(plan: Plan) -> None:
    console = make_console()
    console.print(
        f"rollout {plan.spec.name}: {sum(len(r.devices) for r in plan.rings)} devices, "
        f"{len(plan.rings)} rings",
        highlight=False,
    )
    for ring in plan.rings:
        changes = ", ".join(
            f"{n} {b or '(none)'} -> {a or '(removed)'}" for n, (b, a) in ring.changes.items()
        )
        console.print(
            f"  {ring.name}: {len(ring.devices)} devices in {ring.group}"
            + (
                f" (+{len(ring.to_add)} / -{len(ring.to_remove)} members)"
                if ring.to_add or ring.to_remove
                else ""
            )
            + f"; {changes or 'no version changes'}",
            highlight=False,
        )
        after = ", ".join(f"{n} {v}" for n, v in sorted(ring.after.items()))
        before = ", ".join(f"{n} {v}" for n, v in sorted(ring.before.items())) or "nothing from this group"
        console.print(f"    before: {before}", highlight=False)
        console.print(f"    after:  {after}", highlight=False)


def _handled(command: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        with _aws_errors():
            command(*args, **kwargs)

    return run


@app.command()
@_handled
def plan(spec_path: SpecPath, region: Region = None, as_json: AsJson = False) -> None:
    """Print what the rollout will do per ring (devices, versions before and after); deploys nothing."""
    spec = _load(spec_path)
    planned, _ = check_and_plan(Clients(region), spec)
    if as_json:
        print(json.dumps(planned.as_json(), indent=2))
        return
    _print_plan(planned)


def _run(spec: RolloutSpec, region: str | None, report_dir: Path) -> None:
    console = make_console(stderr=True)
    started = time.time()
    tasks: dict[str, TaskID] = {}
    with Progress(TextColumn("{task.description}"), console=console, transient=False) as progress:

        def on_progress(ring: str, counts: dict[str, int], total: int) -> None:
            text = f"ring {ring} ({total} devices): " + " ".join(
                f"{s.lower()} {counts.get(s, 0)}" for s in COLUMNS if counts.get(s) or s in COLUMNS[:5]
            )
            if ring not in tasks:
                tasks[ring] = progress.add_task(text, total=None)
            progress.update(tasks[ring], description=text)

        def on_event(event: Event) -> None:
            progress.console.print(
                f"{event.ring or 'rollout'}: {event.what}", highlight=False, soft_wrap=True
            )

        orchestrator = Orchestrator(Clients(region), spec, WallClock(), on_progress, on_event)
        try:
            record = orchestrator.run()
        except GateFailed:
            _report(orchestrator.record, report_dir, started)
            raise
        except KeyboardInterrupt:
            _report(orchestrator.record, report_dir, started)
            raise
    _report(record, report_dir, started)
    if record.outcome == "canceled":
        raise DeployError(f"rollout {spec.name} was canceled; devices keep what they applied")
    if record.outcome == "superseded":
        raise DeployError(
            f"rollout {spec.name} stopped: another revision (a rollback by hand, another deployment) "
            "replaced the current ring's deployment"
        )
    if record.outcome == "rolled-back":
        raise DeployError(f"rollout {spec.name} was rolled back: {record.failure or 'by hand'}")
    if record.outcome == "awaiting-promotion":
        print(f"rollout {spec.name}: a ring waits for `edgeml deploy promote {spec.source}`")
        return
    print(f"rollout {spec.name}: completed")


def _report(record: RunRecord, folder: Path, started: float) -> None:
    json_path, html_path = write_reports(record, folder, started)
    make_console(stderr=True).print(f"report: {json_path} and {html_path}", highlight=False, soft_wrap=True)


@app.command()
@_handled
def start(spec_path: SpecPath, region: Region = None, report_dir: ReportDir = DEFAULT_REPORTS) -> None:
    """Run the rollout ring by ring: deploy, follow, soak, gate, then promote or roll back."""
    spec = _load(spec_path)
    state = read_state(Clients(region), spec)
    if state.phase != "not-started":
        raise RolloutStateError(
            f"rollout {spec.name} has already started ({state.phase}); use `edgeml deploy resume`"
        )
    _run(spec, region, report_dir)


@app.command()
@_handled
def resume(spec_path: SpecPath, region: Region = None, report_dir: ReportDir = DEFAULT_REPORTS) -> None:
    """Continue a rollout from where AWS says it stands (after a crash, a promotion, on another machine)."""
    spec = _load(spec_path)
    if read_state(Clients(region), spec).phase == "not-started":
        raise RolloutStateError(f"rollout {spec.name} has not started; use `edgeml deploy start`")
    _run(spec, region, report_dir)


@app.command()
@_handled
def status(spec_path: SpecPath, region: Region = None, as_json: AsJson = False) -> None:
    """Where the rollout stands, per ring, from the deployments' tags and job executions."""
    spec = _load(spec_path)
    clients = Clients(region)
    state = read_state(clients, spec)
    rings = []
    for ring_state in state.rings:
        entry: dict[str, object] = {"ring": ring_state.ring.name, "thingGroup": ring_state.ring.target_group}
        if ring_state.ours is not None:
            executions = pages(
                clients.iot.list_job_executions_for_job,
                "executionSummaries",
                jobId=ring_state.ours["iotJobId"],
                maxResults=250,
            )
            counts: dict[str, int] = {}
            for summary in executions:
                key = summary["jobExecutionSummary"]["status"]
                counts[key] = counts.get(key, 0) + 1
            entry.update(
                {
                    "deploymentId": ring_state.ours["deploymentId"],
                    "gate": ring_state.gate or "pending",
                    "canceled": ring_state.canceled,
                    "rolledBack": ring_state.rollback is not None,
                    "executions": counts,
                }
            )
        rings.append(entry)
    if as_json:
        print(json.dumps({"rollout": spec.name, "phase": state.phase, "rings": rings}, indent=2))
        return
    console = make_console()
    console.print(f"rollout {spec.name}: {state.phase}", highlight=False)
    for entry in rings:
        detail = (
            f"gate {entry['gate']}, executions {entry['executions']}"
            + (", canceled" if entry.get("canceled") else "")
            + (", rolled back" if entry.get("rolledBack") else "")
            if "deploymentId" in entry
            else "not deployed"
        )
        console.print(f"  {entry['ring']} ({entry['thingGroup']}): {detail}", highlight=False)


@app.command()
@_handled
def promote(spec_path: SpecPath, region: Region = None) -> None:
    """Promote the current ring now (skips the rest of its soak and its gate); `resume` goes on."""
    spec = _load(spec_path)
    ring = Orchestrator(Clients(region), spec, WallClock()).promote()
    print(
        f"rollout {spec.name}: ring {ring} promoted; a running rollout goes on, else `edgeml deploy resume`"
    )


@app.command()
@_handled
def rollback(spec_path: SpecPath, region: Region = None) -> None:
    """Redeploy the previous revision to every ring the rollout touched."""
    spec = _load(spec_path)
    rings = Orchestrator(Clients(region), spec, WallClock()).rollback()
    print(f"rollout {spec.name}: rolled back {', '.join(rings) or 'nothing'}")


@app.command()
@_handled
def cancel(spec_path: SpecPath, region: Region = None) -> None:
    """Stop the current ring: devices that have not taken it never will; those that have keep it."""
    spec = _load(spec_path)
    ring = Orchestrator(Clients(region), spec, WallClock()).cancel()
    print(f"rollout {spec.name}: ring {ring} canceled")
