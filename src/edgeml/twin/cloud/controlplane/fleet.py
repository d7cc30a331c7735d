"""Core devices, their installed components and effective deployments, as the nucleus reports them.

Fleet status (NUC status/FleetStatusService, status/model/FleetStatusDetails, ComponentDetails,
ComponentStatusDetails, DeploymentInformation): the nucleus publishes a FleetStatusDetails JSON to
`$aws/things/{thing}/greengrassv2/health/json`; overallDeviceStatus is HEALTHY or UNHEALTHY (UNHEALTHY
iff a component is BROKEN); messageType COMPLETE lists every component, PARTIAL only those that changed.
Effective deployments come from the job executions (BOTO EffectiveDeployment: COMPLETED for a thing
target, SUCCEEDED for a thing-group target), `reason` as the DG's EventBridge events write it:
"<most specific code>: <detailed status>: <failure cause>".
"""

from __future__ import annotations

import json
import re
from typing import Any

from edgeml.twin.cloud.controlplane import context
from edgeml.twin.cloud.controlplane.arns import core_device_arn
from edgeml.twin.cloud.controlplane.core import Core
from edgeml.twin.cloud.controlplane.errors import not_found
from edgeml.twin.cloud.controlplane.jobs import Execution, Job
from edgeml.twin.cloud.controlplane.paging import page
from edgeml.twin.cloud.controlplane.timeutil import to_datetime

HEALTH_TOPIC = re.compile(r"^\$aws/things/(?P<thing>[^/]+)/greengrassv2/health/json$")
DEFAULT_RUNTIME = "aws_nucleus_classic"
DETAILED_STATUS = "detailed-deployment-status"
FAILURE_CAUSE = "deployment-failure-cause"
ERROR_STACK = "deployment-error-stack"
ERROR_TYPES = "deployment-error-types"
_EXECUTION_TO_EFFECTIVE = {"REMOVED": "CANCELED"}


def detail_list(value: Any) -> list[str]:
    """A statusDetails list value: a JSON array, Java's List.toString() ("[A, B]") or a real list."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list):
                return [str(v) for v in parsed]
        except ValueError:
            text = text[1:-1] if text.endswith("]") else text[1:]
    return [part.strip() for part in text.split(",") if part.strip()]


def effective_status(job: Job, execution: Execution) -> str:
    if execution.status == "SUCCEEDED":
        return "SUCCEEDED" if job.is_group else "COMPLETED"
    return _EXECUTION_TO_EFFECTIVE.get(execution.status, execution.status)


class Fleet:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._sorted_names: list[str] | None = None

    # --- fleet status messages -----------------------------------------------------------------
    def on_iot_publish(self, topic: str, payload: bytes | str, region: str) -> bool:
        """Take one IoT Core publish; returns whether it was a fleet status message this plane used."""
        match = HEALTH_TOPIC.match(topic)
        if not match:
            return False
        try:
            message = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        thing = match["thing"]
        with self.core.lock:
            self._apply(thing, region, message)
        return True

    def device(self, thing: str) -> dict[str, Any]:
        record = self.core.state.core_devices.get(thing)
        if record is None:
            record = {"thing": thing, "reported": False, "deployedGroups": [], "components": {}}
            self.core.state.core_devices[thing] = record
        return record

    def _apply(self, thing: str, region: str, message: dict[str, Any]) -> None:
        now = self.core.now()
        record = self.device(thing)
        reported_ms = message.get("timestamp")
        reported = (
            float(reported_ms) / 1000.0 if isinstance(reported_ms, (int, float)) and reported_ms else now
        )
        if record.get("reported") and reported < record.get("lastStatusUpdate", 0.0):
            return  # out of order: an older message than the one already applied
        if not record.get("reported"):
            self._sorted_names = None
        record.update(
            {
                "reported": True,
                "region": region,
                "lastStatusUpdate": reported,
                "coreVersion": message.get("ggcVersion") or record.get("coreVersion"),
                "platform": message.get("platform") or record.get("platform"),
                "architecture": message.get("architecture") or record.get("architecture"),
                "runtime": message.get("runtime") or record.get("runtime") or DEFAULT_RUNTIME,
                "status": message.get("overallDeviceStatus") or record.get("status") or "HEALTHY",
            }
        )
        components = message.get("components")
        if not isinstance(components, list):
            return
        chunk = message.get("chunkInfo") or {}
        replace = message.get("messageType") == "COMPLETE" and int(chunk.get("chunkId", 1) or 1) <= 1
        previous: dict[str, Any] = record["components"]
        current: dict[str, Any] = {} if replace else dict(previous)
        sources = self._configuration_sources()
        for entry in components:
            if not isinstance(entry, dict) or not entry.get("componentName"):
                continue
            name = str(entry["componentName"])
            before = previous.get(name) or {}
            state = str(entry.get("status") or entry.get("state") or "")
            details = entry.get("componentStatusDetails") or {}
            codes = details.get("statusCodes", details.get("statusCode")) or []
            arns = entry.get("fleetConfigArns") or []
            source = next((sources[a] for a in reversed(arns) if a in sources), None)
            changed = before.get("lifecycleState") != state or before.get("componentVersion") != entry.get(
                "version"
            )
            current[name] = {
                "componentName": name,
                "componentVersion": str(entry.get("version") or ""),
                "lifecycleState": state,
                "isRoot": bool(entry.get("isRoot")),
                "lastStatusChangeTimestamp": reported
                if changed
                else before.get("lastStatusChangeTimestamp", reported),
                "lastReportedTimestamp": reported,
                "lastInstallationSource": source
                or ("LOCAL" if not arns else before.get("lastInstallationSource")),
                "lifecycleStatusCodes": [str(c) for c in codes],
                **(
                    {"lifecycleStateDetails": str(details["statusReason"])}
                    if details.get("statusReason")
                    else {}
                ),
            }
        record["components"] = current

    def _configuration_sources(self) -> dict[str, str]:
        return {r["configurationArn"]: r["deploymentId"] for r in self.core.state.deployments.values()}

    def deployment_succeeded(self, thing: str, job: Job) -> None:
        """ListCoreDevices' group filter: a device is listed once a deployment to the group succeeded."""
        if job.is_group:
            groups = self.device(thing)["deployedGroups"]
            if job.target_arn not in groups:
                groups.append(job.target_arn)

    # --- operations ----------------------------------------------------------------------------
    def _reported(self, thing: str) -> dict[str, Any]:
        record = self.core.state.core_devices.get(thing)
        if record is None or not record.get("reported"):
            raise not_found(f"Core device {thing} does not exist", thing, "CoreDevice")
        return record

    @staticmethod
    def _device_summary(record: dict[str, Any]) -> dict[str, Any]:
        out = {
            "coreDeviceThingName": record["thing"],
            "status": record["status"],
            "lastStatusUpdateTimestamp": to_datetime(record["lastStatusUpdate"]),
        }
        for key in ("platform", "architecture", "runtime"):
            if record.get(key):
                out[key] = record[key]
        return out

    def get_core_device(self, coreDeviceThingName: str) -> dict[str, Any]:
        ctx = context.current()
        record = self._reported(coreDeviceThingName)
        out = self._device_summary(record)
        if record.get("coreVersion"):
            out["coreVersion"] = record["coreVersion"]
        out["tags"] = self.core.state.tags.get(
            core_device_arn(ctx.region, ctx.account_id, coreDeviceThingName), {}
        )
        return out

    def delete_core_device(self, coreDeviceThingName: str) -> dict[str, Any]:
        """Removes the core device record (not the IoT thing); a new status message makes it again."""
        ctx = context.current()
        self._reported(coreDeviceThingName)
        del self.core.state.core_devices[coreDeviceThingName]
        self.core.state.tags.pop(core_device_arn(ctx.region, ctx.account_id, coreDeviceThingName), None)
        self._sorted_names = None
        return {}

    def list_core_devices(
        self,
        thingGroupArn: str | None = None,
        status: str | None = None,
        maxResults: int | None = None,
        nextToken: str | None = None,
        runtime: str | None = None,
    ) -> dict[str, Any]:
        devices = self.core.state.core_devices
        if self._sorted_names is None:
            self._sorted_names = sorted(t for t, r in devices.items() if r.get("reported"))
        names: list[str] = self._sorted_names
        if thingGroupArn or status or runtime:
            names = [
                t
                for t in names
                if (thingGroupArn is None or thingGroupArn in devices[t]["deployedGroups"])
                and (status is None or devices[t]["status"] == status)
                and (runtime is None or devices[t]["runtime"] == runtime)
            ]
        listed, token = page(names, maxResults, nextToken)
        return {
            "coreDevices": [self._device_summary(devices[t]) for t in listed],
            **({"nextToken": token} if token else {}),
        }

    def list_installed_components(
        self,
        coreDeviceThingName: str,
        maxResults: int | None = None,
        nextToken: str | None = None,
        topologyFilter: str = "ROOT",
    ) -> dict[str, Any]:
        record = self._reported(coreDeviceThingName)
        items = [c for _, c in sorted(record["components"].items()) if topologyFilter == "ALL" or c["isRoot"]]
        listed, token = page(items, maxResults, nextToken)
        out = []
        for item in listed:
            shown = dict(item)
            for key in ("lastStatusChangeTimestamp", "lastReportedTimestamp"):
                shown[key] = to_datetime(item[key])
            if shown.get("lastInstallationSource") is None:
                shown.pop("lastInstallationSource", None)
            out.append(shown)
        return {"installedComponents": out, **({"nextToken": token} if token else {})}

    def list_effective_deployments(
        self, coreDeviceThingName: str, maxResults: int | None = None, nextToken: str | None = None
    ) -> dict[str, Any]:
        ctx = context.current()
        thing = coreDeviceThingName
        known = thing in self.core.state.core_devices or thing in self.core.state.jobs_by_thing
        if not known and not self.core.thing_exists(ctx.region, ctx.account_id, thing):
            raise not_found(f"Core device {thing} does not exist", thing, "CoreDevice")
        self.core.sync_thing(ctx.region, ctx.account_id, thing, self.core.now())
        rows = []
        for job_id in self.core.state.jobs_by_thing.get(thing, []):
            job = self.core.state.jobs.get(job_id)
            if job is None:
                continue
            record = self.core.state.deployments.get(job.deployment_id)
            if record is None:
                continue
            rows.append((job, job.executions[thing], record))
        # newest change first; the later deployment first when the times are equal
        order = {id(row[0]): index for index, row in enumerate(rows)}
        rows.sort(
            key=lambda row: (row[1].last_updated_at, row[0].created_at, order[id(row[0])]), reverse=True
        )
        listed, token = page(rows, maxResults, nextToken)
        return {
            "effectiveDeployments": [self._effective(*row) for row in listed],
            **({"nextToken": token} if token else {}),
        }

    @staticmethod
    def _effective(job: Job, execution: Execution, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "deploymentId": record["deploymentId"],
            "deploymentName": record["deploymentName"],
            "iotJobId": job.job_id,
            "iotJobArn": job.job_arn,
            "targetArn": record["targetArn"],
            "coreDeviceExecutionStatus": effective_status(job, execution),
            "creationTimestamp": to_datetime(record["created"]),
            "modifiedTimestamp": to_datetime(execution.last_updated_at),
        }
        details = execution.status_details
        stack = detail_list(details.get(ERROR_STACK))
        types = detail_list(details.get(ERROR_TYPES))
        if execution.status in ("FAILED", "REJECTED", "TIMED_OUT", "CANCELED"):
            parts = [
                p
                for p in (
                    stack[-1] if stack else "",
                    details.get(DETAILED_STATUS, ""),
                    details.get(FAILURE_CAUSE, ""),
                )
                if p
            ]
            if execution.status == "TIMED_OUT" and not parts:
                parts = ["The deployment timed out on the device (inProgressTimeoutInMinutes)"]
            if parts:
                out["reason"] = ": ".join(parts)[:1024]
            if stack or types:
                out["statusDetails"] = {"errorStack": stack, "errorTypes": types}
        return out
