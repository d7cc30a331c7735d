"""The cloud twin's GreengrassV2 control plane with the IoT Jobs semantics of its deployments.

`ControlPlane(state_dir, clock, moto_iot)` serves, through the protocol layer
(`edgeml.twin.cloud.service` is the contract):
- `.greengrassv2`: the GreengrassV2 operations (components, deployments, core devices, data plane);
- `.iot`: the AWS IoT job operations for the deployments' jobs (`owns_job` says which ids are ours);
- `.jobs_data`: the IoT jobs data plane a device uses;
- `.on_iot_publish(topic, payload, region)`: fleet status messages a nucleus publishes;
- `.tick()`: applies what is due (rollout minutes, timeouts, group membership changes);
- `.save()`: writes the state to `state_dir` (read back at construction).
Every call takes one lock; time comes only from `clock`. The request's region and endpoint come from
`controlplane.context.request_context`, which the protocol layer sets per request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeml.twin.cloud.controlplane.components import Components
from edgeml.twin.cloud.controlplane.context import RequestContext, current, request_context
from edgeml.twin.cloud.controlplane.core import Core
from edgeml.twin.cloud.controlplane.deployments import Deployments
from edgeml.twin.cloud.controlplane.device_data import DeviceData
from edgeml.twin.cloud.controlplane.fleet import Fleet
from edgeml.twin.cloud.controlplane.iot_jobs import IotJobs
from edgeml.twin.cloud.controlplane.jobs_data import JobsData
from edgeml.twin.cloud.controlplane.tags import Tags
from edgeml.twin.cloud.service import Clock

__all__ = ["ControlPlane", "RequestContext", "current", "request_context"]

GREENGRASS_OPERATIONS = {
    "components": (
        "create_component_version",
        "describe_component",
        "get_component",
        "list_components",
        "list_component_versions",
        "delete_component",
        "resolve_component_candidates",
        "get_component_version_artifact",
    ),
    "deployments": (
        "create_deployment",
        "get_deployment",
        "list_deployments",
        "cancel_deployment",
        "delete_deployment",
    ),
    "tags": ("tag_resource", "untag_resource", "list_tags_for_resource"),
    "fleet": (
        "list_effective_deployments",
        "list_core_devices",
        "get_core_device",
        "list_installed_components",
        "delete_core_device",
    ),
    "device_data": ("list_thing_groups_for_core_device", "get_deployment_configuration"),
}
IOT_OPERATIONS = (
    "describe_job",
    "list_job_executions_for_job",
    "describe_job_execution",
    "list_job_executions_for_thing",
    "cancel_job",
    "get_job_document",
    "list_jobs",
)
JOBS_DATA_OPERATIONS = (
    "get_pending_job_executions",
    "start_next_pending_job_execution",
    "describe_job_execution",
    "update_job_execution",
)


def _locked(core: Core, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with core.lock:
            return method(*args, **kwargs)

    return call


class OperationSet:
    """One service's operations as attributes (snake_case names), each run under the plane's lock."""

    def __init__(self, core: Core, methods: dict[str, Callable[..., Any]]) -> None:
        self._names = tuple(methods)
        for name, method in methods.items():
            setattr(self, name, _locked(core, method))

    def operations(self) -> tuple[str, ...]:
        return self._names

    def __getattr__(self, name: str) -> Any:  # for mypy: operations are set in __init__
        raise AttributeError(name)


class IotOperationSet(OperationSet):
    """The IoT job operations, and `owns_job`: whether a job id is a deployment's (others are moto's)."""

    def __init__(
        self, core: Core, methods: dict[str, Callable[..., Any]], owns_job: Callable[[str], bool]
    ) -> None:
        super().__init__(core, methods)
        self._owns_job = owns_job

    def owns_job(self, job_id: str) -> bool:
        return self._owns_job(job_id)


def _default_moto_s3() -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    return s3_backends[DEFAULT_ACCOUNT_ID]["global"]


class ControlPlane:
    def __init__(
        self,
        state_dir: Path,
        clock: Clock,
        moto_iot: Callable[[str], Any],
        *,
        moto_s3: Callable[[], Any] = _default_moto_s3,
    ) -> None:
        self.core = Core(state_dir, clock, moto_iot, moto_s3)
        self.components = Components(self.core)
        self.deployments = Deployments(self.core, self.components)
        self.fleet = Fleet(self.core)
        self.iot_jobs = IotJobs(self.core)
        self.jobs_data_plane = JobsData(self.core, self.fleet)
        parts: dict[str, Any] = {
            "tags": Tags(self.core),
            "components": self.components,
            "deployments": self.deployments,
            "fleet": self.fleet,
            "device_data": DeviceData(self.core, self.deployments, self.components),
        }
        self.greengrassv2 = OperationSet(
            self.core,
            {
                name: getattr(parts[part], name)
                for part, names in GREENGRASS_OPERATIONS.items()
                for name in names
            },
        )
        self.iot = IotOperationSet(
            self.core, {name: getattr(self.iot_jobs, name) for name in IOT_OPERATIONS}, self.iot_jobs.owns_job
        )
        self.jobs_data = OperationSet(
            self.core, {name: getattr(self.jobs_data_plane, name) for name in JOBS_DATA_OPERATIONS}
        )

    def on_iot_publish(self, topic: str, payload: bytes | str, region: str) -> bool:
        """An IoT Core publish seen by the twin; fleet status messages update core devices."""
        return self.fleet.on_iot_publish(topic, payload, region)

    def tick(self) -> None:
        self.core.tick()

    def save(self) -> None:
        self.core.save()
