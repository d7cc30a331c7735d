"""An IoT job behind each deployment: executions per thing, staged rollout, abort criteria, timeouts.

AWS IoT semantics (IOTDG jobs-configurations-details, iot-jobs-lifecycle; the iot model's docs):
- rollout: at most `rate` things are notified per minute; the rate starts at baseRatePerMinute and is
  multiplied by incrementFactor each time the notified or succeeded count reaches its threshold again
  (thresholds are cumulative: 1000, 2000, ...), capped by maximumPerMinute. Executions are created as
  the rollout reaches their thing (a thing not yet reached has none).
- a thing that joins a target group after the job was created gets its execution at once (no rate).
- abort: once at least minNumberOfExecutedThings executions have finished and failures of failureType
  reach thresholdPercentage of them, the job is CANCELED and only QUEUED executions are canceled.
- timeout: inProgressTimeoutInMinutes counts from IN_PROGRESS; then the execution is TIMED_OUT.
Time is read only from the Clock handed to `advance`.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field, fields
from typing import Any

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "REMOVED", "CANCELED"})
EXECUTED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED"})
FAILURE_TYPES = {
    "FAILED": frozenset({"FAILED"}),
    "REJECTED": frozenset({"REJECTED"}),
    "TIMED_OUT": frozenset({"TIMED_OUT"}),
    "ALL": frozenset({"FAILED", "REJECTED", "TIMED_OUT"}),
}
DEFAULT_MAX_PER_MINUTE = 1000
_NOT_SAVED = frozenset({"executions", "in_progress", "deadlines"})


@dataclass
class Execution:
    thing_name: str
    status: str
    queued_at: float
    last_updated_at: float
    execution_number: int
    version_number: int = 1
    started_at: float | None = None
    status_details: dict[str, str] = field(default_factory=dict)
    timeout_at: float | None = None
    step_timeout_at: float | None = None
    force_canceled: bool = False

    def deadline(self) -> float | None:
        times = [t for t in (self.timeout_at, self.step_timeout_at) if t is not None]
        return min(times) if times else None


_EXECUTION_FIELDS = tuple(f.name for f in fields(Execution))  # thing_name first


@dataclass
class Job:
    job_id: str
    job_arn: str
    deployment_id: str
    target_arn: str
    is_group: bool
    document: dict[str, Any]
    created_at: float
    rollout: dict[str, Any] | None = None
    abort: list[dict[str, Any]] = field(default_factory=list)
    timeout_minutes: int | None = None
    status: str = "IN_PROGRESS"
    last_updated_at: float = 0.0
    completed_at: float | None = None
    force_canceled: bool = False
    reason_code: str | None = None
    comment: str | None = None
    pending: list[str] = field(default_factory=list)
    windows_done: int = -1
    rate: float = 0.0
    notified_step: int = 0
    succeeded_step: int = 0
    executions: dict[str, Execution] = field(default_factory=dict)
    next_execution_number: int = 1
    counts: dict[str, int] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)
    deadlines: list[tuple[float, str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.deadlines = []
        for thing in self.in_progress:
            self.watch(thing)

    # --- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Saved form: the job's fields, its executions as rows (dataclasses.asdict was 95% of a save)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _NOT_SAVED}
        data["executions"] = [
            [getattr(e, name) for name in _EXECUTION_FIELDS] for e in self.executions.values()
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        rows = data.pop("executions")
        executions = {row[0]: Execution(**dict(zip(_EXECUTION_FIELDS, row, strict=True))) for row in rows}
        job = cls(**data)
        job.executions = executions
        job.in_progress = {t for t, e in executions.items() if e.status == "IN_PROGRESS"}
        job.__post_init__()
        return job

    # --- rollout -------------------------------------------------------------------------------
    def start(self, things: list[str], now: float) -> list[str]:
        """Queue the target's things; returns those notified now (the rollout's first minute)."""
        self.last_updated_at = now
        self.pending = list(things)
        self.rate = self._base_rate()
        return self.advance(now)

    def _base_rate(self) -> float:
        if not self.rollout:
            return math.inf
        exponential = self.rollout.get("exponentialRate")
        if exponential:
            return float(exponential["baseRatePerMinute"])
        return float(self.rollout.get("maximumPerMinute", DEFAULT_MAX_PER_MINUTE))

    def _max_rate(self) -> float:
        if not self.rollout:
            return math.inf
        return float(self.rollout.get("maximumPerMinute", DEFAULT_MAX_PER_MINUTE))

    def _raise_rate(self) -> None:
        """At a minute's start: one increase if the next cumulative notified/succeeded threshold was met."""
        exponential = (self.rollout or {}).get("exponentialRate")
        if not exponential:
            return
        criteria = exponential.get("rateIncreaseCriteria") or {}
        notified_every = int(criteria.get("numberOfNotifiedThings") or 0)
        succeeded_every = int(criteria.get("numberOfSucceededThings") or 0)
        notified_met = notified_every > 0 and len(self.executions) >= notified_every * (
            self.notified_step + 1
        )
        succeeded_met = succeeded_every > 0 and (
            self.count("SUCCEEDED") >= succeeded_every * (self.succeeded_step + 1)
        )
        if notified_met:
            self.notified_step += 1
        if succeeded_met:
            self.succeeded_step += 1
        if notified_met or succeeded_met:
            self.rate = min(self.rate * float(exponential["incrementFactor"]), self._max_rate())

    def notify(self, thing: str, now: float) -> Execution:
        execution = Execution(
            thing_name=thing,
            status="QUEUED",
            queued_at=now,
            last_updated_at=now,
            execution_number=self.next_execution_number,
        )
        self.next_execution_number += 1
        self.executions[thing] = execution
        self.counts["QUEUED"] = self.counts.get("QUEUED", 0) + 1
        self.last_updated_at = now
        return execution

    def advance(self, now: float) -> list[str]:
        """Apply everything due by `now`: rollout windows, timeouts, abort. Returns newly notified things."""
        if self.status != "IN_PROGRESS":
            return []
        notified: list[str] = []
        self._time_out(now)
        current_window = int((now - self.created_at) // 60)
        while self.pending and self.windows_done < current_window:
            self.windows_done += 1
            window_start = self.created_at + 60 * self.windows_done
            self._raise_rate()
            quota = len(self.pending) if math.isinf(self.rate) else max(1, int(self.rate))
            batch, self.pending = self.pending[:quota], self.pending[quota:]
            for thing in batch:
                if thing not in self.executions:
                    self.notify(thing, window_start)
                    notified.append(thing)
        if not self.pending:
            self.windows_done = max(self.windows_done, current_window)
        self.check_abort(now)
        return notified

    def _time_out(self, now: float) -> None:
        while self.deadlines and self.deadlines[0][0] <= now:
            _, thing = heapq.heappop(self.deadlines)
            execution = self.executions[thing]
            deadline = execution.deadline()
            if execution.status == "IN_PROGRESS" and deadline is not None and deadline <= now:
                self.set_status(execution, "TIMED_OUT", deadline)

    def watch(self, thing: str) -> None:
        """Remember an IN_PROGRESS execution's deadline (call after setting a timer)."""
        deadline = self.executions[thing].deadline()
        if deadline is not None:
            heapq.heappush(self.deadlines, (deadline, thing))

    def next_due(self) -> float | None:
        """When `advance` next has something to do (a rollout window or a timeout), if ever."""
        if self.status != "IN_PROGRESS":
            return None
        due = [self.deadlines[0][0]] if self.deadlines else []
        if self.pending:
            due.append(self.created_at + 60 * (self.windows_done + 1))
        return min(due) if due else None

    # --- status --------------------------------------------------------------------------------
    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    def set_status(self, execution: Execution, status: str, now: float) -> None:
        if execution.status == "QUEUED" and status == "IN_PROGRESS":
            execution.started_at = now
            if self.timeout_minutes:
                execution.timeout_at = now + 60 * self.timeout_minutes
                heapq.heappush(self.deadlines, (execution.timeout_at, execution.thing_name))
        self.counts[execution.status] = self.counts.get(execution.status, 0) - 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if status == "IN_PROGRESS":
            self.in_progress.add(execution.thing_name)
        else:
            self.in_progress.discard(execution.thing_name)
        execution.status = status
        execution.last_updated_at = now
        execution.version_number += 1
        self.last_updated_at = now
        if status in TERMINAL:
            execution.timeout_at = None
            execution.step_timeout_at = None

    def check_abort(self, now: float) -> bool:
        if self.status != "IN_PROGRESS" or not self.abort:
            return False
        executed = sum(self.count(status) for status in EXECUTED)
        for criteria in self.abort:
            if executed < int(criteria["minNumberOfExecutedThings"]) or not executed:
                continue
            failures = sum(self.count(status) for status in FAILURE_TYPES[criteria["failureType"]])
            if failures * 100.0 / executed >= float(criteria["thresholdPercentage"]):
                self.cancel(
                    now,
                    force=False,
                    reason_code="AbortCriteria",
                    comment=(
                        f"Job aborted: {failures} of {executed} executed things ended "
                        f"{criteria['failureType']} (threshold {criteria['thresholdPercentage']}%)"
                    ),
                )
                return True
        return False

    def cancel(self, now: float, *, force: bool, reason_code: str | None, comment: str | None) -> None:
        """CANCELED: QUEUED executions canceled, IN_PROGRESS ones too when forced; nobody else notified."""
        self.status = "CANCELED"
        self.force_canceled = force
        self.reason_code = reason_code
        self.comment = comment
        self.pending = []
        self.last_updated_at = now
        self.completed_at = now
        if not force and not self.count("QUEUED"):
            return
        for execution in self.executions.values():
            if execution.status == "QUEUED" or (force and execution.status == "IN_PROGRESS"):
                execution.force_canceled = execution.status == "IN_PROGRESS"
                self.set_status(execution, "CANCELED", now)

    def process_details(self) -> dict[str, Any]:
        counts = self.counts
        names = {
            "CANCELED": "numberOfCanceledThings",
            "SUCCEEDED": "numberOfSucceededThings",
            "FAILED": "numberOfFailedThings",
            "REJECTED": "numberOfRejectedThings",
            "QUEUED": "numberOfQueuedThings",
            "IN_PROGRESS": "numberOfInProgressThings",
            "REMOVED": "numberOfRemovedThings",
            "TIMED_OUT": "numberOfTimedOutThings",
        }
        return {member: counts.get(status, 0) for status, member in names.items()}
