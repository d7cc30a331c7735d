"""ONNX Runtime or LiteRT for one CPU manifest: the faster variant as timed by compile on this machine.

`package` asks this when a platform can take both a portable ONNX variant (the first of its preference
order) and a LiteRT one. With both timed on the platform's architecture (variants.json `latency_ms`,
`measured_on`), the lower median wins; otherwise the ONNX variant (the preference order), and the record
says why. The record becomes metadata.json `runtime_choice`; packaging stays byte-reproducible because
the timings are those recorded at compile time, not measured again.
"""

from __future__ import annotations

from typing import Any

from edgeml.model.targets import Platform
from edgeml.model.variants import Variant


def pick_runtime(
    platform: Platform, onnx: Variant | None, litert: Variant | None
) -> tuple[Variant | None, dict[str, Any] | None]:
    """(the variant for `platform`, the runtime_choice record, or None when there was no choice)."""
    if onnx is None or litert is None:
        return (onnx or litert), None
    candidates = (onnx, litert)
    timed = all(
        item.latency_ms is not None and item.measured_on == platform.architecture for item in candidates
    )
    if timed:
        chosen = min(candidates, key=lambda item: (item.latency_ms, item is litert))
        rule = f"lower median latency measured on {platform.architecture} at compile"
    else:
        chosen = onnx
        measured = sorted({str(item.measured_on) for item in candidates})
        rule = f"preference order: not timed on {platform.architecture} (timed on {', '.join(measured)})"
    record = {
        "candidates": {
            item.target: {
                "framework": item.framework,
                "latency_ms": item.latency_ms,
                "measured_on": item.measured_on,
            }
            for item in candidates
        },
        "chosen": chosen.target,
        "rule": rule,
    }
    return chosen, record
