"""The AWS IoT view of each deployment's job: what `boto3.client("iot")` answers for a deployment's iotJobId.

Shapes from the iot model (Job, JobProcessDetails, JobExecution, JobExecutionSummaryFor{Job,Thing});
jobs this plane does not own are left to moto (`owns_job`).
"""

from __future__ import annotations

import json
from typing import Any

from edgeml.twin.cloud.controlplane import context
from edgeml.twin.cloud.controlplane.arns import thing_arn
from edgeml.twin.cloud.controlplane.core import Core
from edgeml.twin.cloud.controlplane.errors import iot_invalid, iot_not_found
from edgeml.twin.cloud.controlplane.jobs import Execution, Job
from edgeml.twin.cloud.controlplane.paging import iot_page
from edgeml.twin.cloud.controlplane.timeutil import to_datetime

# Greengrass deployment jobs live in this IoT jobs namespace (NUC IotJobsClientWrapper topics
# `$aws/things/%s/jobs/%s/namespace-aws-gg-deployment/...`)
GREENGRASS_NAMESPACE = "aws-gg-deployment"


class IotJobs:
    def __init__(self, core: Core) -> None:
        self.core = core

    def owns_job(self, job_id: str) -> bool:
        with self.core.lock:
            return job_id in self.core.state.jobs

    def job(self, job_id: str) -> Job:
        found = self.core.state.jobs.get(job_id)
        if found is None:
            raise iot_not_found(f"Job {job_id} does not exist")
        self.core.advance_job(found, self.core.now())
        self.core.sync_group_job(found, self.core.now())
        return found

    def describe_job(self, jobId: str, beforeSubstitution: bool | None = None) -> dict[str, Any]:
        job = self.job(jobId)
        configuration = self.core.state.deployments.get(job.deployment_id, {}).get("iotJobConfiguration", {})
        described: dict[str, Any] = {
            "jobArn": job.job_arn,
            "jobId": job.job_id,
            "targetSelection": "CONTINUOUS" if job.is_group else "SNAPSHOT",
            "status": self.job_status(job),
            "forceCanceled": job.force_canceled,
            "targets": [job.target_arn],
            "description": f"Greengrass deployment {job.deployment_id}",
            "createdAt": to_datetime(job.created_at),
            "lastUpdatedAt": to_datetime(job.last_updated_at),
            "jobProcessDetails": job.process_details(),
            "isConcurrent": False,
            "namespaceId": GREENGRASS_NAMESPACE,
        }
        for key in ("reasonCode", "comment"):
            value = job.reason_code if key == "reasonCode" else job.comment
            if value:
                described[key] = value
        if job.completed_at is not None:
            described["completedAt"] = to_datetime(job.completed_at)
        if job.rollout:
            described["jobExecutionsRolloutConfig"] = job.rollout
        if job.abort:
            described["abortConfig"] = {
                "criteriaList": [
                    {**c, "action": c.get("action", "CANCEL")}
                    for c in configuration.get("abortConfig", {}).get("criteriaList", job.abort)
                ]
            }
        if job.timeout_minutes:
            described["timeoutConfig"] = {"inProgressTimeoutInMinutes": job.timeout_minutes}
        return {"job": described}

    def job_status(self, job: Job) -> str:
        if job.status == "IN_PROGRESS" and not job.is_group and job.executions:
            only = next(iter(job.executions.values()))
            if only.status in ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "REMOVED", "CANCELED"):
                return "COMPLETED"
        return job.status

    def list_jobs(
        self,
        status: str | None = None,
        targetSelection: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
        thingGroupName: str | None = None,
        thingGroupId: str | None = None,
        namespaceId: str | None = None,
    ) -> dict[str, Any]:
        """The deployments' jobs (the endpoint puts moto's own jobs after them on the first page)."""
        now = self.core.now()
        rows = []
        if namespaceId is not None and namespaceId != GREENGRASS_NAMESPACE:
            return {"jobs": []}
        for job in sorted(self.core.state.jobs.values(), key=lambda j: j.created_at, reverse=True):
            self.core.advance_job(job, now)
            selection = "CONTINUOUS" if job.is_group else "SNAPSHOT"
            if status is not None and self.job_status(job) != status:
                continue
            if targetSelection is not None and selection != targetSelection:
                continue
            if thingGroupName is not None and job.target_arn.split("thinggroup/")[-1] != thingGroupName:
                continue
            summary: dict[str, Any] = {
                "jobArn": job.job_arn,
                "jobId": job.job_id,
                "targetSelection": selection,
                "status": self.job_status(job),
                "createdAt": to_datetime(job.created_at),
                "lastUpdatedAt": to_datetime(job.last_updated_at),
                "isConcurrent": False,
            }
            if job.completed_at is not None:
                summary["completedAt"] = to_datetime(job.completed_at)
            rows.append(summary)
        listed, token = iot_page(rows, maxResults, nextToken)
        return {"jobs": listed, **({"nextToken": token} if token else {})}

    def get_job_document(self, jobId: str, beforeSubstitution: bool | None = None) -> dict[str, Any]:
        return {"document": json.dumps(self.job(jobId).document)}

    @staticmethod
    def summary(execution: Execution) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": execution.status,
            "queuedAt": to_datetime(execution.queued_at),
            "lastUpdatedAt": to_datetime(execution.last_updated_at),
            "executionNumber": execution.execution_number,
            "retryAttempt": 0,
        }
        if execution.started_at is not None:
            out["startedAt"] = to_datetime(execution.started_at)
        return out

    def list_job_executions_for_job(
        self,
        jobId: str,
        status: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        ctx = context.current()
        job = self.job(jobId)
        executions = [e for e in job.executions.values() if status is None or e.status == status]
        listed, token = iot_page(executions, maxResults, nextToken)
        return {
            "executionSummaries": [
                {
                    "thingArn": thing_arn(ctx.region, ctx.account_id, e.thing_name),
                    "jobExecutionSummary": self.summary(e),
                }
                for e in listed
            ],
            **({"nextToken": token} if token else {}),
        }

    def list_job_executions_for_thing(
        self,
        thingName: str,
        status: str | None = None,
        namespaceId: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
        jobId: str | None = None,
    ) -> dict[str, Any]:
        ctx = context.current()
        if namespaceId is not None and namespaceId != GREENGRASS_NAMESPACE:
            return {"executionSummaries": []}
        self.core.sync_thing(ctx.region, ctx.account_id, thingName, self.core.now())
        rows = []
        for job_id in self.core.state.jobs_by_thing.get(thingName, []):
            job = self.core.state.jobs.get(job_id)
            if job is None or (jobId is not None and job_id != jobId):
                continue
            execution = job.executions[thingName]
            if status is None or execution.status == status:
                rows.append({"jobId": job_id, "jobExecutionSummary": self.summary(execution)})
        listed, token = iot_page(rows, maxResults, nextToken)
        return {"executionSummaries": listed, **({"nextToken": token} if token else {})}

    def describe_job_execution(
        self, jobId: str, thingName: str, executionNumber: int | None = None
    ) -> dict[str, Any]:
        ctx = context.current()
        job = self.job(jobId)
        execution = job.executions.get(thingName)
        if execution is None or (
            executionNumber is not None and execution.execution_number != executionNumber
        ):
            raise iot_not_found(f"Job execution of job {jobId} on thing {thingName} does not exist")
        out: dict[str, Any] = {
            "jobId": jobId,
            "status": execution.status,
            "forceCanceled": execution.force_canceled,
            "statusDetails": {"detailsMap": dict(execution.status_details)},
            "thingArn": thing_arn(ctx.region, ctx.account_id, thingName),
            "queuedAt": to_datetime(execution.queued_at),
            "lastUpdatedAt": to_datetime(execution.last_updated_at),
            "executionNumber": execution.execution_number,
            "versionNumber": execution.version_number,
        }
        if execution.started_at is not None:
            out["startedAt"] = to_datetime(execution.started_at)
        deadline = execution.deadline()
        if deadline is not None and execution.status == "IN_PROGRESS":
            out["approximateSecondsBeforeTimedOut"] = max(0, int(deadline - self.core.now()))
        return {"execution": out}

    def cancel_job(
        self, jobId: str, reasonCode: str | None = None, comment: str | None = None, force: bool | None = None
    ) -> dict[str, Any]:
        job = self.job(jobId)
        if job.status != "IN_PROGRESS":
            raise iot_invalid(f"Job {jobId} is {job.status}; only an IN_PROGRESS job can be canceled")
        job.cancel(self.core.now(), force=bool(force), reason_code=reasonCode, comment=comment)
        record = self.core.state.deployments.get(job.deployment_id)
        if record is not None and record["deploymentStatus"] == "ACTIVE":
            record["deploymentStatus"] = "CANCELED"
        return {
            "jobArn": job.job_arn,
            "jobId": job.job_id,
            "description": f"Greengrass deployment {job.deployment_id}",
        }
