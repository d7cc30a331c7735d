"""What the demo measured, from what came back: results in the local stream, records in the cloud twin's
Kinesis, IoT Core publishes, captured inputs in S3. Rendered as rich tables and written as JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from edgeml.console import folding_table
from edgeml.demo.digits import label_of


@dataclass
class ResultFigures:
    """The inference results read back from the device's results stream."""

    total: int
    ok: int
    errors: dict[str, int]
    accuracy: float | None  # over ok results of labelled images
    by_model_version: dict[str, int]
    latency_ms_p50: float | None
    latency_ms_p95: float | None

    @classmethod
    def from_results(cls, results: list[dict[str, Any]]) -> ResultFigures:
        ok = [result for result in results if result.get("status") == "ok"]
        labelled = [(label_of(str(r.get("source", ""))), r.get("class_index")) for r in ok]
        scored = [(truth, predicted) for truth, predicted in labelled if truth is not None]
        latencies = [float(r["latency_ms"]) for r in ok if "latency_ms" in r]
        return cls(
            total=len(results),
            ok=len(ok),
            errors=dict(Counter(str(r.get("reason")) for r in results if r.get("status") != "ok")),
            accuracy=round(sum(t == p for t, p in scored) / len(scored), 4) if scored else None,
            by_model_version=dict(Counter(str(r.get("model_version")) for r in ok)),
            latency_ms_p50=round(float(np.percentile(latencies, 50)), 3) if latencies else None,
            latency_ms_p95=round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        )


@dataclass
class DemoSummary:
    """Everything the demo reports; `summary.json` holds it."""

    variants: list[dict[str, Any]] = field(default_factory=list)
    published: dict[str, str] = field(default_factory=dict)  # component -> newest version published
    deployments: list[dict[str, Any]] = field(default_factory=list)  # name, each device's status
    components: dict[str, str] = field(default_factory=dict)  # root component -> version the devices run
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # thing -> GreengrassV2's view of it
    per_device: dict[str, dict[str, int]] = field(default_factory=dict)
    images: int = 0
    results: ResultFigures | None = None
    exports: dict[str, int | bool] = field(default_factory=dict)
    app_starts_before_update: dict[str, int] = field(default_factory=dict)
    model_update: dict[str, Any] = field(default_factory=dict)
    rollout: dict[str, Any] = field(default_factory=dict)  # the model update's staged rollout
    offline: dict[str, int] = field(default_factory=dict)
    apps_stopped_on_sigterm: dict[str, bool] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage, in order
    app_exit_code: int | None = None  # 0 when every device's app stopped cleanly on SIGTERM

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _text(value: object) -> str:
    return {True: "yes", False: "no"}.get(value, str(value)) if isinstance(value, bool) else str(value)


def figure_rows(summary: DemoSummary) -> list[tuple[str, str]]:
    """Every row of the "What came back" table, in order (the table prints each one, none dropped)."""
    rows: list[tuple[str, str]] = [("images dropped in the input folders", str(summary.images))]
    results = summary.results
    if results is not None:
        rows += [
            ("results in the local streams", f"{results.total} ({results.ok} ok)"),
            ("error results (reason: count)", ", ".join(f"{k}: {v}" for k, v in results.errors.items())),
            ("accuracy against the labels", "-" if results.accuracy is None else f"{results.accuracy:.4f}"),
            ("latency p50 / p95 (ms, in the app)", f"{results.latency_ms_p50} / {results.latency_ms_p95}"),
            (
                "results per model version",
                ", ".join(f"{k}: {v}" for k, v in sorted(results.by_model_version.items())),
            ),
        ]
    per_device = sorted(summary.per_device.items())
    rows += [(f"results from {thing}", str(each["results"])) for thing, each in per_device]
    rows += [(name, _text(value)) for name, value in {**summary.offline, **summary.exports}.items()]
    if summary.model_update:
        update = summary.model_update
        restarts = ", ".join(f"{t}: {n}" for t, n in sorted(update["app restarts by the nucleus"].items()))
        change = f"{update['from']} -> {update['to']}"
        rows.append(("model update", f"{change}, app restarts by the nucleus: {restarts}"))
    if summary.rollout:
        rows.append(
            (
                "CloudWatch health metrics of the devices (health rules)",
                str(summary.rollout["CloudWatch health metrics of the devices"]),
            )
        )
    rows.append(
        (
            "apps stopped cleanly on SIGTERM",
            f"{sum(summary.apps_stopped_on_sigterm.values())} of {len(summary.apps_stopped_on_sigterm)}",
        )
    )
    return rows


def _check_text(name: str, check: dict[str, Any]) -> str:
    observed = "no data" if check["observed"] is None else f"{check['observed']:g}"
    verdict = "passed" if check["passed"] else "FAILED"
    return f"{name} {observed} (threshold {check['threshold']:g}) {verdict}"


def print_rollout(rollout: dict[str, Any], console: Console) -> None:
    title = f"Staged rollout {rollout['name']}: {rollout['outcome']}"
    table = folding_table("ring", "thing group", "devices", "soak s", "gate", title=title)
    for ring in rollout["rings"]:
        gate = "; ".join(_check_text(name, check) for name, check in ring["gate"].items()) or "-"
        devices = ", ".join(ring["devices"])
        table.add_row(ring["ring"], ring["thing group"], devices, f"{ring['soak s']:g}", gate)
    console.print(table)


def render(summary: DemoSummary, console: Console) -> None:
    variants = folding_table("variant", "quantisation", "held-out top-1", "size KiB", title="Model variants")
    for variant in summary.variants:
        accuracy = variant["accuracy_top1"]
        variants.add_row(
            variant["target"],
            variant["quantisation"],
            "-" if accuracy is None else f"{accuracy:.4f}",
            f"{variant['bytes'] / 1024:.1f}",
        )
    console.print(variants)

    deployments = folding_table("deployment", "devices", title="Deployments through the control plane")
    for deployment in summary.deployments:
        statuses = ", ".join(f"{thing}: {status}" for thing, status in sorted(deployment["devices"].items()))
        deployments.add_row(deployment["name"], statuses)
    console.print(deployments)

    if summary.rollout:
        print_rollout(summary.rollout, console)

    devices = folding_table(
        "core device",
        "status",
        "root components (ListInstalledComponents)",
        title="Core devices, as GreengrassV2 sees them",
    )
    for thing, view in sorted(summary.devices.items()):
        components = ", ".join(
            f"{name} {version} {view['states'].get(name, '')}".strip()
            for name, version in sorted(view["root components"].items())
        )
        devices.add_row(thing, view["status"], components)
    console.print(devices)

    timings = folding_table("stage", "seconds", title="Where the time went")
    for stage, seconds in summary.seconds.items():
        timings.add_row(stage, f"{seconds:.1f}")
    timings.add_row("total", f"{sum(summary.seconds.values()):.1f}")
    console.print(timings)

    figures = folding_table("figure", "value", title="What came back")
    for name, value in figure_rows(summary):
        figures.add_row(name, value)
    console.print(figures)
