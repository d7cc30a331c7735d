"""Polls Neo compilation jobs with exponential backoff until each completes, fails or times out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from edgeml.errors import EdgemlError

RUNNING_STATES = frozenset({"STARTING", "INPROGRESS", "STOPPING"})
FAILED_STATES = frozenset({"FAILED", "STOPPED"})


class NeoJobFailed(EdgemlError):
    """A compilation job ended FAILED or STOPPED; the message carries Neo's FailureReason."""


class NeoTimeout(EdgemlError):
    """Jobs were still running when the overall timeout passed (they are asked to stop)."""


class Clock(Protocol):
    """Time source, injectable so tests need not sleep."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Backoff:
    """Polls at once, then after `initial_s`, each wait `factor`x longer (max `max_s`) until `timeout_s`."""

    initial_s: float = 5.0
    factor: float = 1.5
    max_s: float = 60.0
    timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.factor < 1 or self.max_s <= 0:
            raise ValueError(f"backoff needs initial_s > 0, factor >= 1, max_s > 0: {self}")

    def waits(self) -> list[float]:
        """The wait before each poll, until their sum reaches the timeout."""
        waits, wait, total = [], self.initial_s, 0.0
        while total < self.timeout_s:
            wait = min(wait, self.timeout_s - total)
            waits.append(wait)
            total += wait
            wait = min(wait * self.factor, self.max_s)
        return waits


StatusListener = Callable[[str, str, str], None]  # (target, job name, status)


def stop_jobs(sagemaker: Any, names: list[str]) -> None:
    """Asks Neo to stop each job, ignoring errors (a job may have ended meanwhile)."""
    for name in names:
        with contextlib.suppress(sagemaker.exceptions.ClientError):  # the job may have ended
            sagemaker.stop_compilation_job(CompilationJobName=name)


def poll_jobs(
    sagemaker: Any,
    jobs: dict[str, str],
    backoff: Backoff,
    clock: Clock,
    on_status: StatusListener | None = None,
) -> dict[str, dict[str, Any]]:
    """Waits for every job in `jobs` (target -> job name); returns target -> final describe response.

    Raises NeoJobFailed on the first FAILED/STOPPED job and NeoTimeout when the backoff's timeout passes
    (stopping the jobs still running in both cases). On Ctrl-C the jobs still running are asked to stop
    too, so an interrupted compile leaves nothing running (and billing) in SageMaker.
    """
    pending = dict(jobs)
    try:
        return _poll(sagemaker, pending, backoff, clock, on_status)
    except KeyboardInterrupt:
        stop_jobs(sagemaker, list(pending.values()))
        raise


def _poll(
    sagemaker: Any,
    pending: dict[str, str],
    backoff: Backoff,
    clock: Clock,
    on_status: StatusListener | None,
) -> dict[str, dict[str, Any]]:
    """poll_jobs' loop; removes each job from `pending` once it has ended."""
    finished: dict[str, dict[str, Any]] = {}
    started = clock.monotonic()
    waits = iter(backoff.waits())
    while True:
        for target, name in list(pending.items()):
            described: dict[str, Any] = sagemaker.describe_compilation_job(CompilationJobName=name)
            status = str(described["CompilationJobStatus"])
            if on_status is not None:
                on_status(target, name, status)
            if status == "COMPLETED":
                finished[target] = described
                del pending[target]
            elif status in FAILED_STATES:
                del pending[target]
                stop_jobs(sagemaker, list(pending.values()))
                reason = described.get("FailureReason") or "no FailureReason given"
                raise NeoJobFailed(f"Neo job {name} ({target}) {status}: {reason}")
        if not pending:
            return finished
        wait = next(waits, None)
        if wait is None:
            stop_jobs(sagemaker, list(pending.values()))
            elapsed = clock.monotonic() - started
            raise NeoTimeout(
                f"Neo job(s) {', '.join(pending.values())} still running after {elapsed:.0f} s"
                f" (timeout {backoff.timeout_s:.0f} s); asked them to stop"
            )
        clock.sleep(wait)
