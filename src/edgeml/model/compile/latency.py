"""Per-variant latency on this machine: what `package` uses to pick ONNX Runtime or LiteRT for a platform.

Every variant of one compile is timed in the same run, interleaved (round r runs each variant in turn), one
thread each, on an all-zero sample of its input; the figure is the median of all its runs, in ms.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeml.machine import nucleus_architecture
from edgeml.model.compile.litert_variant import run_tflite
from edgeml.model.evaluate import cpu_session
from edgeml.model.signature import tflite_interpreter

ROUNDS = 5
RUNS_PER_ROUND = 40
ROUND_BUDGET_S = 0.05  # per variant and round: a large model runs fewer times, not for longer


@dataclass(frozen=True)
class Timed:
    """A variant file to time: its framework ("onnx" | "tflite"), input shape and dtype."""

    path: Path
    framework: str
    shape: tuple[int, ...]
    dtype: str


def this_architecture() -> str:
    """This machine's architecture in the nucleus' names (amd64, aarch64, arm)."""
    return nucleus_architecture()


def _runner(item: Timed) -> Callable[[], object]:
    sample = np.zeros(item.shape, dtype=np.dtype(item.dtype))
    if item.framework == "tflite":
        interpreter = tflite_interpreter(item.path, xnnpack=True)  # timed as the app runs it
        return lambda: run_tflite(interpreter, sample)
    session = cpu_session(item.path, intra_op_threads=1)
    feed = {session.get_inputs()[0].name: sample}
    return lambda: session.run(None, feed)


def measure_latencies(items: dict[str, Timed]) -> dict[str, float]:
    """Median ms per run of each item (by name), measured interleaved in this process."""
    runners = {name: _runner(item) for name, item in items.items()}
    for run in runners.values():
        run()  # warm-up: first-run allocations are not the steady state
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _round in range(ROUNDS):
        for name, run in runners.items():
            deadline = time.perf_counter() + ROUND_BUDGET_S
            for _ in range(RUNS_PER_ROUND):
                start = time.perf_counter()
                run()
                end = time.perf_counter()
                samples[name].append((end - start) * 1000.0)
                if end > deadline:
                    break
    return {name: round(statistics.median(values), 4) for name, values in samples.items()}
