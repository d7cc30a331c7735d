"""The IoT jobs data plane a device uses for its deployments (`boto3.client("iot-jobs-data")`).

Semantics from the iot-jobs-data model docs and IOTDG iot-jobs-lifecycle: a device sets IN_PROGRESS,
SUCCEEDED, FAILED or REJECTED; each update bumps versionNumber; `expectedVersion` must match it;
a terminal execution takes no update; statusDetails, when given, replace the previous ones. The
nucleus reports detailed-deployment-status, deployment-failure-cause, deployment-error-stack and
deployment-error-types there (NUC DeploymentService / IotJobsHelper; values at most 1024 characters).
"""

from __future__ import annotations

import heapq
import json
from typing import Any

from edgeml.twin.cloud.controlplane import context
from edgeml.twin.cloud.controlplane.core import Core
from edgeml.twin.cloud.controlplane.errors import ServiceError, iot_invalid, iot_not_found
from edgeml.twin.cloud.controlplane.fleet import Fleet
from edgeml.twin.cloud.controlplane.jobs import TERMINAL, Execution, Job

DEVICE_STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED")
MAX_DETAIL_CHARS = 1024


def _invalid_transition(message: str) -> ServiceError:
    return ServiceError("InvalidStateTransitionException", message)


class JobsData:
    def __init__(self, core: Core, fleet: Fleet) -> None:
        self.core = core
        self.fleet = fleet

    def _pending(self, thing: str) -> list[tuple[Job, Execution]]:
        ctx = context.current()
        self.core.sync_thing(ctx.region, ctx.account_id, thing, self.core.now())
        rows = []
        for job_id in self.core.state.jobs_by_thing.get(thing, []):
            job = self.core.state.jobs.get(job_id)
            if job is None:
                continue
            execution = job.executions[thing]
            if execution.status in ("QUEUED", "IN_PROGRESS"):
                rows.append((job, execution))
        rows.sort(key=lambda row: (row[1].queued_at, row[1].execution_number))
        return rows

    def _next(self, thing: str) -> tuple[Job, Execution] | None:
        pending = self._pending(thing)
        started = [row for row in pending if row[1].status == "IN_PROGRESS"]
        if started:
            return started[0]
        return pending[0] if pending else None

    @staticmethod
    def _summary(job: Job, execution: Execution) -> dict[str, Any]:
        out = {
            "jobId": job.job_id,
            "queuedAt": int(execution.queued_at),
            "lastUpdatedAt": int(execution.last_updated_at),
            "versionNumber": execution.version_number,
            "executionNumber": execution.execution_number,
        }
        if execution.started_at is not None:
            out["startedAt"] = int(execution.started_at)
        return out

    def _execution(self, job: Job, execution: Execution, include_document: bool) -> dict[str, Any]:
        out = {
            **self._summary(job, execution),
            "thingName": execution.thing_name,
            "status": execution.status,
            "statusDetails": dict(execution.status_details),
        }
        deadline = execution.deadline()
        if deadline is not None and execution.status == "IN_PROGRESS":
            out["approximateSecondsBeforeTimedOut"] = max(0, int(deadline - self.core.now()))
        if include_document:
            out["jobDocument"] = json.dumps(job.document)
        return out

    # --- operations ----------------------------------------------------------------------------
    def get_pending_job_executions(self, thingName: str) -> dict[str, Any]:
        pending = self._pending(thingName)
        return {
            "inProgressJobs": [self._summary(j, e) for j, e in pending if e.status == "IN_PROGRESS"],
            "queuedJobs": [self._summary(j, e) for j, e in pending if e.status == "QUEUED"],
        }

    def start_next_pending_job_execution(
        self,
        thingName: str,
        statusDetails: dict[str, str] | None = None,
        stepTimeoutInMinutes: int | None = None,
    ) -> dict[str, Any]:
        found = self._next(thingName)
        if found is None:
            return {}
        job, execution = found
        if execution.status == "QUEUED":
            self._apply(job, execution, "IN_PROGRESS", statusDetails, stepTimeoutInMinutes)
        return {"execution": self._execution(job, execution, include_document=True)}

    def describe_job_execution(
        self,
        jobId: str,
        thingName: str,
        includeJobDocument: bool | None = None,
        executionNumber: int | None = None,
    ) -> dict[str, Any]:
        if jobId == "$next":
            found = self._next(thingName)
            if found is None:
                raise iot_not_found(f"No pending job execution for thing {thingName}")
            job, execution = found
        else:
            job, execution = self._find(jobId, thingName)
        if executionNumber is not None and execution.execution_number != executionNumber:
            raise iot_not_found(f"Job {jobId} has no execution number {executionNumber} on {thingName}")
        return {"execution": self._execution(job, execution, bool(includeJobDocument))}

    def _find(self, job_id: str, thing: str) -> tuple[Job, Execution]:
        ctx = context.current()
        self.core.sync_thing(ctx.region, ctx.account_id, thing, self.core.now())
        job = self.core.state.jobs.get(job_id)
        execution = job.executions.get(thing) if job is not None else None
        if job is None or execution is None:
            raise iot_not_found(f"Job execution of job {job_id} on thing {thing} does not exist")
        return job, execution

    def update_job_execution(
        self,
        jobId: str,
        thingName: str,
        status: str,
        statusDetails: dict[str, str] | None = None,
        stepTimeoutInMinutes: int | None = None,
        expectedVersion: int | None = None,
        includeJobExecutionState: bool | None = None,
        includeJobDocument: bool | None = None,
        executionNumber: int | None = None,
    ) -> dict[str, Any]:
        if status not in DEVICE_STATUSES:
            raise iot_invalid(
                f"status {status} cannot be set by a device; use one of {', '.join(DEVICE_STATUSES)}"
            )
        for key, value in (statusDetails or {}).items():
            if not isinstance(value, str) or len(value) > MAX_DETAIL_CHARS:
                raise iot_invalid(
                    f"statusDetails.{key} must be a string of at most {MAX_DETAIL_CHARS} characters"
                )
        job, execution = self._find(jobId, thingName)
        if executionNumber is not None and execution.execution_number != executionNumber:
            raise iot_not_found(f"Job {jobId} has no execution number {executionNumber} on {thingName}")
        if execution.status in TERMINAL:
            raise _invalid_transition(
                f"Job execution of {jobId} on {thingName} is {execution.status}, a terminal state; "
                f"it cannot become {status}"
            )
        if expectedVersion is not None and expectedVersion != execution.version_number:
            raise _invalid_transition(
                f"VersionMismatch: expectedVersion {expectedVersion}, the execution is at version "
                f"{execution.version_number}"
            )
        self._apply(job, execution, status, statusDetails, stepTimeoutInMinutes)
        out: dict[str, Any] = {}
        if includeJobExecutionState:
            out["executionState"] = {
                "status": execution.status,
                "statusDetails": dict(execution.status_details),
                "versionNumber": execution.version_number,
            }
        if includeJobDocument:
            out["jobDocument"] = json.dumps(job.document)
        return out

    def _apply(
        self,
        job: Job,
        execution: Execution,
        status: str,
        details: dict[str, str] | None,
        step_minutes: int | None,
    ) -> None:
        now = self.core.now()
        if details is not None:
            execution.status_details = dict(details)
        job.set_status(execution, status, now)
        if step_minutes and status == "IN_PROGRESS":
            execution.step_timeout_at = now + 60 * step_minutes
            heapq.heappush(job.deadlines, (execution.step_timeout_at, execution.thing_name))
        if status == "SUCCEEDED":
            self.fleet.deployment_succeeded(execution.thing_name, job)
        if status in TERMINAL:
            job.check_abort(now)
            self.core.advance_job(job, now)
