"""The run's JSON report and an offline HTML report with inline SVG plots (no scripts, no network).

Plots: per ring, job executions by status over time (the timeline); per device, its status as a coloured
cell; per gate metric, its value over the soak (the ring's series) against the threshold, and each
device's value. Files are named after the rollout and the run's start time, so no run overwrites another.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from typing import Any

from edgeml.deploy.gate import GateResult
from edgeml.deploy.metrics import DeviceHealth
from edgeml.deploy.orchestrator import RunRecord

COLOURS = {
    "SUCCEEDED": "#2e7d32",
    "COMPLETED": "#2e7d32",
    "IN_PROGRESS": "#1565c0",
    "QUEUED": "#9e9e9e",
    "FAILED": "#c62828",
    "REJECTED": "#ad1457",
    "TIMED_OUT": "#ef6c00",
    "CANCELED": "#6d4c41",
    "REMOVED": "#6d4c41",
    "NOT_RECEIVED": "#bdbdbd",
}
HEALTH_SERIES = {
    "errorRate": None,  # computed from Errors / Requests
    "latencyP99Ms": "LatencyP99",
    "meanConfidence": "MeanConfidence",
    "driftPsi": "ClassPsi",
    "resultsPerDevice": "Requests",
}


def _gate_json(result: GateResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "passed": result.passed,
        "checks": [c.as_json() for c in result.checks],
        "devices": [
            {
                "thing": d.thing,
                "status": d.status,
                "reason": d.reason,
                "versions": d.versions,
                "broken": d.broken,
                "unhealthy": d.unhealthy,
            }
            for d in result.devices
        ],
    }
    if result.health is not None:
        out["health"] = {
            "start": result.health.start,
            "end": result.health.end,
            "periodSeconds": result.health.period_s,
            "series": {m: [[t, v] for t, v in points] for m, points in result.health.series.items()},
            "devices": {t: _device_health(h) for t, h in result.health.devices.items()},
        }
    return out


def _device_health(health: DeviceHealth) -> dict[str, Any]:
    return {
        "requests": health.requests,
        "errors": health.errors,
        "errorRate": health.error_rate,
        "latencyP99Ms": health.latency_p99_ms,
        "meanConfidence": health.mean_confidence,
        "driftPsi": health.drift_psi,
    }


def report_json(record: RunRecord) -> dict[str, Any]:
    return {
        "rollout": record.spec.name,
        "spec": record.spec.digest,
        "outcome": record.outcome,
        "failure": record.failure,
        "rolledBack": record.rolled_back,
        "rollbackExecutions": record.rollbacks,
        "plan": record.plan.as_json() if record.plan else None,
        "events": [e.as_json() for e in record.events],
        "progress": {
            ring: [{"at": at, "executions": counts} for at, counts in samples]
            for ring, samples in record.progress.items()
        },
        "gates": {ring: _gate_json(result) for ring, result in record.gates.items()},
    }


# --- SVG ---------------------------------------------------------------------------------------------
W, H, PAD = 560, 180, 36


def _scale(values: list[float], low: float, high: float, size: float, invert: bool) -> list[float]:
    span = (high - low) or 1.0
    return [(size - (v - low) / span * size) if invert else ((v - low) / span * size) for v in values]


def _line_chart(series: dict[str, list[tuple[float, float]]], threshold: float | None, title: str) -> str:
    points = [p for s in series.values() for p in s]
    if not points:
        return f"<p>{html.escape(title)}: no data</p>"
    xs = [p[0] for p in points]
    ys = [p[1] for p in points] + ([threshold] if threshold is not None else [])
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.1 if max(ys) > 0 else 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 2 * PAD}" role="img">',
        f'<text x="{PAD}" y="16" font-size="13">{html.escape(title)}</text>',
        f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H}" fill="none" stroke="#ccc"/>',
        f'<text x="2" y="{PAD + 10}" font-size="10">{y1:.3g}</text>',
        f'<text x="2" y="{PAD + H}" font-size="10">{y0:.3g}</text>',
    ]
    for index, (name, pts) in enumerate(sorted(series.items())):
        if not pts:
            continue
        px = _scale([p[0] for p in pts], x0, x1, W - 2 * PAD, False)
        py = _scale([p[1] for p in pts], y0, y1, H, True)
        colour = COLOURS.get(name, ["#1565c0", "#6a1b9a", "#00838f", "#558b2f"][index % 4])
        path = " ".join(f"{PAD + x:.1f},{PAD + y:.1f}" for x, y in zip(px, py, strict=True))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts.append(
            f'<text x="{W - PAD + 2}" y="{PAD + 12 + 12 * index}" font-size="10" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    if threshold is not None:
        ty = PAD + _scale([threshold], y0, y1, H, True)[0]
        parts.append(
            f'<line x1="{PAD}" x2="{W - PAD}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#c62828" '
            f'stroke-dasharray="6,4"/><text x="{PAD + 4}" y="{ty - 3:.1f}" font-size="10" fill="#c62828">'
            f"threshold {threshold:g}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _device_grid(result: GateResult) -> str:
    size, per_row = 14, 36
    rows = (len(result.devices) + per_row - 1) // per_row or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{per_row * size}" height="{rows * size}">']
    for index, device in enumerate(result.devices):
        x, y = (index % per_row) * size, (index // per_row) * size
        colour = COLOURS.get(device.status, "#000")
        if device.broken or device.unhealthy:
            colour = "#4a148c"
        label = html.escape(f"{device.thing}: {device.status} {device.versions} {device.reason}".strip())
        parts.append(
            f'<rect x="{x}" y="{y}" width="{size - 2}" height="{size - 2}" fill="{colour}">'
            f"<title>{label}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _health_series(result: GateResult, metric: str) -> dict[str, list[tuple[float, float]]]:
    health = result.health
    if health is None:
        return {}
    if metric == "errorRate":
        requests = dict(health.series.get("Requests", []))
        errors = dict(health.series.get("Errors", []))
        return {"ring": [(t, errors.get(t, 0.0) / r) for t, r in sorted(requests.items()) if r > 0]}
    source = HEALTH_SERIES.get(metric)
    if source is None:
        return {}
    points = health.series.get(source, [])
    if metric == "resultsPerDevice":
        devices = max(len(health.devices), 1)
        return {"ring (mean per device)": [(t, v / devices) for t, v in points]}
    return {"ring": points}


def report_html(record: RunRecord) -> str:
    data = report_json(record)
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>edgeml rollout {html.escape(record.spec.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
        ".fail{color:#c62828}.pass{color:#2e7d32}</style></head><body>",
        f"<h1>Rollout {html.escape(record.spec.name)}: {html.escape(record.outcome or 'running')}</h1>",
    ]
    if record.failure:
        out.append(f"<p class='fail'>{html.escape(record.failure)}</p>")
    if record.rolled_back:
        out.append(f"<p>Rolled back: {html.escape(', '.join(record.rolled_back))}</p>")
    out.append("<h2>Events</h2><table><tr><th>time (UTC)</th><th>ring</th><th>event</th></tr>")
    for event in data["events"]:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event["at"]))
        out.append(
            f"<tr><td>{stamp}</td><td>{html.escape(event['ring'])}</td><td>{html.escape(event['event'])}</td></tr>"
        )
    out.append("</table>")
    for ring in record.spec.rings:
        out.append(f"<h2>Ring {html.escape(ring.name)}</h2>")
        for key, title in ((ring.name, "job executions"), (f"{ring.name} (rollback)", "rollback executions")):
            samples = record.progress.get(key, [])
            if samples:
                statuses = sorted({s for _, counts in samples for s in counts})
                series = {s: [(at, float(counts.get(s, 0))) for at, counts in samples] for s in statuses}
                out.append(_line_chart(series, None, f"{title} by status over time"))
        result = record.gates.get(ring.name)
        if result is None:
            out.append("<p>not gated in this run</p>")
            continue
        verdict = "pass" if result.passed else "fail"
        out.append(f"<p class='{verdict}'>gate {'passed' if result.passed else 'FAILED'}</p>")
        out.append(
            "<table><tr><th>check</th><th>observed</th><th>threshold</th><th>failing devices</th></tr>"
        )
        for check in result.checks:
            observed = "no data" if check.observed is None else f"{check.observed:.4g}"
            cls = "pass" if check.passed else "fail"
            names = html.escape(", ".join(check.devices[:20]) + (" ..." if len(check.devices) > 20 else ""))
            out.append(
                f"<tr class='{cls}'><td>{html.escape(check.metric)}</td><td>{observed}</td>"
                f"<td>{html.escape(check.comparison)} {check.threshold:g}</td><td>{names}</td></tr>"
            )
        out.append("</table><h3>Devices</h3>")
        out.append(_device_grid(result))
        for check in result.checks:
            series = _health_series(result, check.metric)
            if series:
                out.append(_line_chart(series, check.threshold, f"{check.metric} over the soak"))
    out.append("<h2>Data</h2><pre>" + html.escape(json.dumps(data, indent=1)[:200_000]) + "</pre>")
    out.append("</body></html>")
    return "".join(out)


def write_reports(record: RunRecord, folder: Path, started: float) -> tuple[Path, Path]:
    """<folder>/<rollout>-<UTC start>.json and .html, written new (never over an existing file)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{record.spec.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}"
    paths = []
    for suffix, text in (
        (".json", json.dumps(report_json(record), indent=2)),
        (".html", report_html(record)),
    ):
        path = folder / f"{stem}{suffix}"
        counter = 1
        while path.exists():
            path = folder / f"{stem}-{counter}{suffix}"
            counter += 1
        temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        paths.append(path)
    return paths[0], paths[1]
