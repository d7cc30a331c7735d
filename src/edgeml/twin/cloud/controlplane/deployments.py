"""GreengrassV2 deployments: one continuous deployment per target, revisions, the IoT job behind each.

Sources: BOTO docs (CreateDeployment, policies and their defaults, ListDeployments historyFilter,
CancelDeployment, DeleteDeployment), DG create/revise/cancel-deployments (supersede, continuous
groups, delete needs cancel first). The job document is the device format the nucleus parses
(NUC DeploymentService.parseAndValidateJobDocument -> Configuration ->
DeploymentDocumentConverter.convertFromDeploymentConfiguration; field names as in the nucleus test
resource FcsDeploymentConfig_Full.json: `version`, `timeout`, merge as an object, creationTimestamp in ms).
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

from edgeml.twin.cloud.controlplane import context
from edgeml.twin.cloud.controlplane.arns import (
    configuration_arn,
    deployment_arn,
    job_arn,
    parse_target_arn,
    version_arn,
)
from edgeml.twin.cloud.controlplane.components import Components
from edgeml.twin.cloud.controlplane.core import Core
from edgeml.twin.cloud.controlplane.errors import conflict, not_found, validation_error
from edgeml.twin.cloud.controlplane.jobs import Job
from edgeml.twin.cloud.controlplane.paging import page
from edgeml.twin.cloud.controlplane.timeutil import to_datetime

DEFAULT_POLICIES: dict[str, Any] = {
    "failureHandlingPolicy": "ROLLBACK",
    "componentUpdatePolicy": {"timeoutInSeconds": 60, "action": "NOTIFY_COMPONENTS"},
    "configurationValidationPolicy": {"timeoutInSeconds": 30},
}


def _decimals(value: float, places: int) -> bool:
    return Decimal(str(value)).as_tuple().exponent >= -places  # type: ignore[operator]


def _with_default_policies(policies: dict[str, Any] | None) -> dict[str, Any]:
    given = policies or {}
    update = {**DEFAULT_POLICIES["componentUpdatePolicy"], **(given.get("componentUpdatePolicy") or {})}
    validation = {
        **DEFAULT_POLICIES["configurationValidationPolicy"],
        **(given.get("configurationValidationPolicy") or {}),
    }
    return {
        "failureHandlingPolicy": given.get(
            "failureHandlingPolicy", DEFAULT_POLICIES["failureHandlingPolicy"]
        ),
        "componentUpdatePolicy": update,
        "configurationValidationPolicy": validation,
    }


def check_job_configuration(configuration: dict[str, Any]) -> None:
    """What the model cannot say: decimal places, and a rate increase needs a criterion."""
    field = "iotJobConfiguration"
    rollout = configuration.get("jobExecutionsRolloutConfig") or {}
    exponential = rollout.get("exponentialRate")
    if exponential:
        if not _decimals(float(exponential["incrementFactor"]), 1):
            raise validation_error(
                "incrementFactor supports one digit after the decimal point",
                field_name=f"{field}.jobExecutionsRolloutConfig.exponentialRate.incrementFactor",
            )
        criteria = exponential.get("rateIncreaseCriteria") or {}
        if not criteria.get("numberOfNotifiedThings") and not criteria.get("numberOfSucceededThings"):
            raise validation_error(
                "rateIncreaseCriteria needs numberOfNotifiedThings or numberOfSucceededThings",
                field_name=f"{field}.jobExecutionsRolloutConfig.exponentialRate.rateIncreaseCriteria",
            )
        maximum = rollout.get("maximumPerMinute")
        if maximum is not None and int(exponential["baseRatePerMinute"]) > int(maximum):
            raise validation_error(
                "baseRatePerMinute cannot exceed maximumPerMinute",
                field_name=f"{field}.jobExecutionsRolloutConfig.exponentialRate.baseRatePerMinute",
            )
    for index, criteria in enumerate((configuration.get("abortConfig") or {}).get("criteriaList") or []):
        if not _decimals(float(criteria["thresholdPercentage"]), 2):
            raise validation_error(
                "thresholdPercentage supports two digits after the decimal point",
                field_name=f"{field}.abortConfig.criteriaList[{index}].thresholdPercentage",
            )


def _check_components(components: dict[str, Any]) -> None:
    for name, spec in components.items():
        update = spec.get("configurationUpdate") or {}
        merge = update.get("merge")
        if merge is not None:
            try:
                parsed = json.loads(merge)
            except ValueError as error:
                raise validation_error(
                    f"configurationUpdate.merge of {name} is not valid JSON: {error}",
                    field_name=f"components.{name}.configurationUpdate.merge",
                ) from error
            if not isinstance(parsed, dict):
                raise validation_error(
                    f"configurationUpdate.merge of {name} must be a JSON object",
                    field_name=f"components.{name}.configurationUpdate.merge",
                )
        for pointer in update.get("reset") or []:
            if pointer != "" and not pointer.startswith("/"):
                raise validation_error(
                    f"configurationUpdate.reset of {name}: '{pointer}' is not a JSON pointer",
                    field_name=f"components.{name}.configurationUpdate.reset",
                )


def device_document(record: dict[str, Any]) -> dict[str, Any]:
    """The job document a nucleus receives for this deployment (its `Configuration` model)."""
    policies = record["deploymentPolicies"]
    components: dict[str, Any] = {}
    capabilities: list[str] = []
    for name, spec in record["components"].items():
        entry: dict[str, Any] = {"version": spec["componentVersion"]}
        update = spec.get("configurationUpdate")
        if update:
            entry["configurationUpdate"] = {
                **({"merge": json.loads(update["merge"])} if update.get("merge") is not None else {}),
                **({"reset": list(update["reset"])} if update.get("reset") is not None else {}),
            }
        run_with = spec.get("runWith")
        if run_with:
            entry["runWith"] = dict(run_with)
            if run_with.get("systemResourceLimits") and "LINUX_RESOURCE_LIMITS" not in capabilities:
                capabilities.append("LINUX_RESOURCE_LIMITS")
        components[name] = entry
    document: dict[str, Any] = {
        "deploymentId": record["deploymentId"],
        "configurationArn": record["configurationArn"],
        "components": components,
        "componentUpdatePolicy": {
            "timeout": policies["componentUpdatePolicy"]["timeoutInSeconds"],
            "action": policies["componentUpdatePolicy"]["action"],
        },
        "configurationValidationPolicy": {
            "timeout": policies["configurationValidationPolicy"]["timeoutInSeconds"]
        },
        "failureHandlingPolicy": policies["failureHandlingPolicy"],
        "creationTimestamp": round(record["created"] * 1000),
    }
    if capabilities:
        document["requiredCapabilities"] = capabilities
    if record.get("parentTargetArn"):
        document["onBehalfOf"] = record["parentTargetArn"]
        document["parentTargetArn"] = record["parentTargetArn"]
    return document


class Deployments:
    def __init__(self, core: Core, components: Components) -> None:
        self.core = core
        self.components = components

    def find(self, deployment_id: str) -> dict[str, Any]:
        record = self.core.state.deployments.get(deployment_id)
        if record is None:
            raise not_found(f"Deployment {deployment_id} does not exist", deployment_id, "Deployment")
        return record

    def job_of(self, record: dict[str, Any]) -> Job:
        return self.core.state.jobs[record["iotJobId"]]

    def status_of(self, record: dict[str, Any]) -> str:
        """ACTIVE while current; CANCELED, INACTIVE once superseded; a thing target ends COMPLETED/FAILED."""
        if record["deploymentStatus"] != "ACTIVE":
            return str(record["deploymentStatus"])
        job = self.job_of(record)
        self.core.advance_job(job, self.core.now())
        if job.status == "CANCELED":
            return "CANCELED"
        if not job.is_group:
            execution = job.executions.get(parse_target_arn(record["targetArn"]).name)
            if execution is not None and execution.status == "SUCCEEDED":
                return "COMPLETED"
            if execution is not None and execution.status in ("FAILED", "REJECTED", "TIMED_OUT"):
                return "FAILED"
        return "ACTIVE"

    # --- operations ----------------------------------------------------------------------------
    def create_deployment(
        self,
        targetArn: str,
        deploymentName: str | None = None,
        components: dict[str, Any] | None = None,
        iotJobConfiguration: dict[str, Any] | None = None,
        deploymentPolicies: dict[str, Any] | None = None,
        parentTargetArn: str | None = None,
        tags: dict[str, str] | None = None,
        clientToken: str | None = None,
    ) -> dict[str, Any]:
        ctx = context.current()
        earlier = self.core.state.deployments.get(self.core.remembered(clientToken, "CreateDeployment") or "")
        if earlier is not None:
            return self._created_output(earlier)
        target = parse_target_arn(targetArn)
        if target.region != ctx.region or target.account != ctx.account_id:
            raise validation_error(
                f"targetArn {targetArn} is not in this account and region ({ctx.region})",
                field_name="targetArn",
            )
        if target.kind == "thing":
            if not self.core.thing_exists(ctx.region, ctx.account_id, target.name):
                raise not_found(f"Thing {target.name} does not exist", targetArn, "thing")
        elif self.core.group(ctx.region, targetArn) is None:
            raise not_found(f"Thing group {target.name} does not exist", targetArn, "thinggroup")
        if parentTargetArn is not None:
            if target.kind != "thinggroup":
                raise validation_error(
                    "A subdeployment's targetArn must be a thing group", field_name="targetArn"
                )
            parent = parse_target_arn(parentTargetArn, "parentTargetArn")
            if parent.kind != "thinggroup":
                raise validation_error(
                    "parentTargetArn must be a thing group ARN", field_name="parentTargetArn"
                )
        specs = {name: dict(spec) for name, spec in (components or {}).items()}
        _check_components(specs)
        for name, spec in specs.items():
            arn = version_arn(ctx.region, ctx.account_id, name, spec["componentVersion"])
            candidates = self.components.candidates(ctx.region, ctx.account_id, name)
            record_arn = next(
                (r["arn"] for r in candidates if r["version"] == spec["componentVersion"]), None
            )
            if record_arn is None:
                raise not_found(
                    f"Component {name} version {spec['componentVersion']} does not exist",
                    arn,
                    "ComponentVersion",
                )
            found = self.components.find(record_arn, f"components.{name}")
            if found["status"]["componentState"] != "DEPLOYABLE":
                raise validation_error(
                    f"Component {name} version {spec['componentVersion']} is "
                    f"{found['status']['componentState']},"
                    " not DEPLOYABLE",
                    field_name=f"components.{name}.componentVersion",
                )
        if iotJobConfiguration:
            check_job_configuration(iotJobConfiguration)
        now = self.core.now()
        revision = self.core.state.revisions.get(targetArn, 0) + 1
        deployment_id = str(uuid.uuid4())
        job_id = str(uuid.uuid4())
        record: dict[str, Any] = {
            "deploymentId": deployment_id,
            "targetArn": targetArn,
            "revisionId": str(revision),
            "deploymentName": deploymentName or f"Deployment for {target.name}",
            "deploymentStatus": "ACTIVE",
            "iotJobId": job_id,
            "iotJobArn": job_arn(ctx.region, ctx.account_id, job_id),
            "components": specs,
            "deploymentPolicies": _with_default_policies(deploymentPolicies),
            "iotJobConfiguration": iotJobConfiguration or {},
            "created": now,
            "region": ctx.region,
            "account": ctx.account_id,
            "configurationArn": configuration_arn(ctx.region, ctx.account_id, target, revision),
        }
        if parentTargetArn:
            record["parentTargetArn"] = parentTargetArn
        self._supersede(targetArn, now)
        self.core.state.revisions[targetArn] = revision
        self.core.state.latest_for_target[targetArn] = deployment_id
        self.core.state.deployments[deployment_id] = record
        if tags:
            self.core.state.tags[deployment_arn(ctx.region, ctx.account_id, deployment_id)] = dict(tags)
        self.core.remember(clientToken, "CreateDeployment", deployment_id)
        configuration = iotJobConfiguration or {}
        job = Job(
            job_id=job_id,
            job_arn=record["iotJobArn"],
            deployment_id=deployment_id,
            target_arn=targetArn,
            is_group=target.kind == "thinggroup",
            document=device_document(record),
            created_at=now,
            rollout=configuration.get("jobExecutionsRolloutConfig") or None,
            abort=list((configuration.get("abortConfig") or {}).get("criteriaList") or []),
            timeout_minutes=(configuration.get("timeoutConfig") or {}).get("inProgressTimeoutInMinutes"),
        )
        self.core.state.jobs[job_id] = job
        things = self.core.group_members(ctx.region, targetArn) if job.is_group else [target.name]
        for thing in job.start(things, now):
            self.core.state.index_execution(thing, job_id)
        return self._created_output(record)

    @staticmethod
    def _created_output(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "deploymentId": record["deploymentId"],
            "iotJobId": record["iotJobId"],
            "iotJobArn": record["iotJobArn"],
        }

    def _supersede(self, target_arn: str, now: float) -> None:
        """The target's previous revision stops: INACTIVE, not latest, its job CANCELED (delivery stops)."""
        previous_id = self.core.state.latest_for_target.get(target_arn)
        if previous_id is None or previous_id not in self.core.state.deployments:
            return
        previous = self.core.state.deployments[previous_id]
        if previous["deploymentStatus"] == "ACTIVE":
            previous["deploymentStatus"] = "INACTIVE"
        job = self.job_of(previous)
        if job.status == "IN_PROGRESS":
            job.cancel(
                now,
                force=True,
                reason_code="SUPERSEDED",
                comment="A new deployment revision replaced this one",
            )

    def get_deployment(self, deploymentId: str) -> dict[str, Any]:
        record = self.find(deploymentId)
        out = self._summary(record)
        out.update(
            {
                "iotJobId": record["iotJobId"],
                "iotJobArn": record["iotJobArn"],
                "components": record["components"],
                "deploymentPolicies": record["deploymentPolicies"],
                "tags": self.core.state.tags.get(
                    deployment_arn(record["region"], record["account"], deploymentId), {}
                ),
            }
        )
        if record["iotJobConfiguration"]:
            out["iotJobConfiguration"] = record["iotJobConfiguration"]
        return out

    def _summary(self, record: dict[str, Any]) -> dict[str, Any]:
        out = {
            "targetArn": record["targetArn"],
            "revisionId": record["revisionId"],
            "deploymentId": record["deploymentId"],
            "deploymentName": record["deploymentName"],
            "creationTimestamp": to_datetime(record["created"]),
            "deploymentStatus": self.status_of(record),
            "isLatestForTarget": self.core.state.latest_for_target.get(record["targetArn"])
            == record["deploymentId"],
        }
        if record.get("parentTargetArn"):
            out["parentTargetArn"] = record["parentTargetArn"]
        return out

    def list_deployments(
        self,
        targetArn: str | None = None,
        historyFilter: str = "LATEST_ONLY",
        parentTargetArn: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
    ) -> dict[str, Any]:
        ctx = context.current()
        latest = set(self.core.state.latest_for_target.values())
        records = [
            r
            for r in self.core.state.deployments.values()
            if r["region"] == ctx.region
            and (targetArn is None or r["targetArn"] == targetArn)
            and (parentTargetArn is None or r.get("parentTargetArn") == parentTargetArn)
            and (historyFilter == "ALL" or r["deploymentId"] in latest)
        ]
        records.sort(key=lambda r: r["created"], reverse=True)
        listed, token = page(records, maxResults, nextToken)
        return {"deployments": [self._summary(r) for r in listed], **({"nextToken": token} if token else {})}

    def cancel_deployment(self, deploymentId: str) -> dict[str, Any]:
        record = self.find(deploymentId)
        status = self.status_of(record)
        if status != "ACTIVE":
            raise conflict(
                f"Deployment {deploymentId} is {status}; only an ACTIVE deployment can be canceled",
                deploymentId,
                "Deployment",
            )
        record["deploymentStatus"] = "CANCELED"
        # BOTO: "cancels the deployment for devices that haven't yet received it. If a device already
        # received the deployment, this operation doesn't change anything for that device": QUEUED only.
        job = self.job_of(record)
        job.cancel(
            self.core.now(),
            force=False,
            reason_code="CANCELED_BY_USER",
            comment="The deployment was canceled",
        )
        return {"message": f"Deployment {deploymentId} was canceled"}

    def delete_deployment(self, deploymentId: str) -> dict[str, Any]:
        record = self.find(deploymentId)
        if self.status_of(record) == "ACTIVE":
            raise conflict(
                f"Deployment {deploymentId} is ACTIVE; cancel it before deleting it",
                deploymentId,
                "Deployment",
            )
        del self.core.state.deployments[deploymentId]
        if self.core.state.latest_for_target.get(record["targetArn"]) == deploymentId:
            del self.core.state.latest_for_target[record["targetArn"]]
        self.core.state.tags.pop(deployment_arn(record["region"], record["account"], deploymentId), None)
        job = self.core.state.jobs.get(record["iotJobId"])
        if job is not None:
            job.status = "DELETION_IN_PROGRESS"
            for thing in job.executions:
                jobs = self.core.state.jobs_by_thing.get(thing, [])
                if job.job_id in jobs:
                    jobs.remove(job.job_id)
            del self.core.state.jobs[job.job_id]
        return {}
