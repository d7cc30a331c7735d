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
    components: dict[str, str] = field(default_factory=dict)  # component -> installed version
    published: dict[str, str] = field(default_factory=dict)  # component -> newest version published
    manifests: dict[str, str] = field(default_factory=dict)  # component -> manifest the device picked
    images: int = 0
    results: ResultFigures | None = None
    exports: dict[str, int | bool] = field(default_factory=dict)
    hot_swap: dict[str, str] = field(default_factory=dict)
    offline: dict[str, int] = field(default_factory=dict)
    app_exit_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


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

    device = folding_table("component", "version", "manifest", title="Installed on the simulated core device")
    for component, version in sorted(summary.components.items()):
        device.add_row(component, version, summary.manifests.get(component, ""))
    console.print(device)

    figures = folding_table("figure", "value", title="What came back")
    results = summary.results
    if results is not None:
        figures.add_row("images dropped in the input folder", str(summary.images))
        figures.add_row("results in the local stream", f"{results.total} ({results.ok} ok)")
        figures.add_row(
            "error results (reason: count)", ", ".join(f"{k}: {v}" for k, v in results.errors.items())
        )
        figures.add_row(
            "accuracy against the labels", "-" if results.accuracy is None else f"{results.accuracy:.4f}"
        )
        figures.add_row(
            "latency p50 / p95 (ms, in the app)", f"{results.latency_ms_p50} / {results.latency_ms_p95}"
        )
        figures.add_row(
            "results per model version",
            ", ".join(f"{k}: {v}" for k, v in sorted(results.by_model_version.items())),
        )
    for name, value in {**summary.offline, **summary.exports}.items():
        figures.add_row(
            name, {True: "yes", False: "no"}.get(value, str(value)) if isinstance(value, bool) else str(value)
        )
    if summary.hot_swap:
        figures.add_row(
            "hot swap", f"{summary.hot_swap['from']} -> {summary.hot_swap['to']} without a restart"
        )
    figures.add_row("app exit code after SIGTERM", str(summary.app_exit_code))
    console.print(figures)
