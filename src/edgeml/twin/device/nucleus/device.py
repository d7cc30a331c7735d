"""One device twin: a nucleus root directory, its processes, and its link to the cloud twin.

It reaches the cloud only through the device-facing public APIs a nucleus uses, with plain boto3:
iot-jobs-data (DescribeJobExecution $next, UpdateJobExecution; NUC deployment/IotJobsHelper.java),
greengrassv2 ResolveComponentCandidates / GetComponentVersionArtifact / ListThingGroupsForCoreDevice
(NUC deployment/ThingGroupHelper.java), S3, and iot-data Publish for fleet status. The nucleus hears of
new jobs over MQTT (`jobs/notify-next`); the twin has no MQTT broker, so it asks for `$next` every `poll_s`
instead (the one stand-in; it never sees a job sooner than MQTT).
Deployments run one at a time, on the device's deployment thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from edgeml.machine import nucleus_architecture
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS
from edgeml.twin.cloud.protocol.model import twin_botocore_session
from edgeml.twin.device.nucleus import errors as codes
from edgeml.twin.device.nucleus.builtins import (
    DEFAULT_NUCLEUS_VERSION,
    NUCLEUS,
    NUCLEUS_DEFAULTS,
    STREAM_MANAGER,
    StreamManagerProcess,
    builtin_hooks,
)
from edgeml.twin.device.nucleus.configtree import Topics
from edgeml.twin.device.nucleus.deployment import (
    DeploymentInterrupted,
    DeploymentTask,
    DeviceState,
    Document,
    Outcome,
)
from edgeml.twin.device.nucleus.fleetstatus import STATUS_CHANGE_STATES, FleetStatusPublisher, overall_status
from edgeml.twin.device.nucleus.kernel import Kernel
from edgeml.twin.device.nucleus.largeconfig import download_deployment_document
from edgeml.twin.device.nucleus.paths import NucleusPaths
from edgeml.twin.device.nucleus.resolver import Resolver
from edgeml.twin.device.nucleus.service import Service, ServiceSpec
from edgeml.twin.device.nucleus.store import ComponentStore
from edgeml.twin.device.nucleus.thinggroups import list_thing_groups

LOG = logging.getLogger(__name__)
CLIENT_CONFIG = Config(retries={"total_max_attempts": 2}, connect_timeout=5, read_timeout=60)


def device_platform(**overrides: str) -> dict[str, str]:
    """This machine as the nucleus describes it (`os`, `architecture`) plus platformOverride keys."""
    return {"os": "linux", "architecture": nucleus_architecture(), **overrides}


class NucleusTwin:
    def __init__(
        self,
        root: Path,
        thing_name: str,
        endpoint_url: str,
        *,
        region: str = TWIN_CREDENTIALS["AWS_DEFAULT_REGION"],
        platform_override: Mapping[str, str] | None = None,
        nucleus_version: str = DEFAULT_NUCLEUS_VERSION,
        poll_s: float = 0.5,
        port_map: Mapping[int, int] | None = None,
        system_path: str | None = None,
    ) -> None:
        """`system_path`: the PATH of the device's OS, where its python3 is (default: this machine's)."""
        self.paths = NucleusPaths(root.resolve())
        self.thing_name = thing_name
        self.endpoint_url = endpoint_url
        self.region = region
        self.platform = device_platform(**dict(platform_override or {}))
        self.nucleus_version = nucleus_version
        self.poll_s = poll_s
        session = boto3.session.Session(
            botocore_session=twin_botocore_session(),  # the greengrassv2-data operations a nucleus calls
            aws_access_key_id=TWIN_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TWIN_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=TWIN_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        self.greengrass = session.client("greengrassv2", endpoint_url=endpoint_url, config=CLIENT_CONFIG)
        self.jobs = session.client("iot-jobs-data", endpoint_url=endpoint_url, config=CLIENT_CONFIG)
        self.iot_data = session.client("iot-data", endpoint_url=endpoint_url, config=CLIENT_CONFIG)
        self.s3 = session.client("s3", endpoint_url=endpoint_url, config=CLIENT_CONFIG)
        self.stream_manager = StreamManagerProcess(
            self.paths.work_path,
            self._configuration,
            port_map or {},
            self._set_stream_manager_port,
            lambda service: self.kernel.environment(service, {}),
            lambda: self.kernel.credentials.uri,
            lambda name: self.kernel.log(name),
        )
        self.kernel = Kernel(
            self.paths,
            thing_name,
            region,
            endpoint_url,
            nucleus_version,
            builtin_hooks(self.stream_manager),
            self._state_changed,
            system_path,
        )
        self.store = ComponentStore(self.paths, self.greengrass, self.s3)
        self.state = DeviceState()
        self.task = DeploymentTask(
            self.kernel,
            self.store,
            Resolver(self.greengrass, self.platform, self.store.recipes),
            self.platform,
            self.state,
            lambda: list_thing_groups(self.greengrass, thing_name),
            lambda deployment_id: download_deployment_document(self.greengrass, thing_name, deployment_id),
        )
        self.fleet_status = FleetStatusPublisher(thing_name, self.iot_data, self._status_message)
        self.outcomes: list[tuple[str, Outcome]] = []  # (deployment id, outcome), oldest first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._states_lock = threading.Lock()

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> NucleusTwin:
        self.kernel.start()
        nucleus = ServiceSpec(NUCLEUS, self.nucleus_version, {}, {}, "aws.greengrass.nucleus", "aws")
        self.kernel.apply({NUCLEUS: nucleus}, {NUCLEUS: Topics.from_dict(NUCLEUS_DEFAULTS, 1)})
        self.fleet_status.start()
        self.fleet_status.send("NUCLEUS_LAUNCH")
        self._thread = threading.Thread(target=self._poll, name=f"deployments:{self.thing_name}", daemon=True)
        self._thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        self._stop.set()
        self.task.interrupted.set()
        if self._thread is not None:
            self._thread.join(60)
        self.kernel.stop()
        self.fleet_status.stop()
        self._save_state()

    def __enter__(self) -> NucleusTwin:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- views ----------------------------------------------------------------------------------
    def states(self) -> dict[str, str]:
        return self.kernel.states()

    def configuration(self, name: str) -> dict[str, Any]:
        return self.kernel.configuration(name)

    def service(self, name: str) -> Service:
        return self.kernel.services[name]

    def log_path(self, name: str) -> Path:
        return self.paths.log_path(name)

    # -- deployments ----------------------------------------------------------------------------
    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._take_next()
            except (ClientError, BotoCoreError):
                LOG.warning("jobs data plane unreachable for %s", self.thing_name, exc_info=True)
            except Exception:  # a twin bug: logged, the device keeps polling
                LOG.exception("deployment handling failed on %s", self.thing_name)
            self._stop.wait(self.poll_s)

    def _take_next(self) -> None:
        try:
            execution = self.jobs.describe_job_execution(
                jobId="$next", thingName=self.thing_name, includeJobDocument=True
            )["execution"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return
            raise
        job_id = execution["jobId"]
        document = Document(json.loads(execution["jobDocument"]))
        stale = self.task.stale(document)
        if stale is not None:
            self._finish(job_id, document, stale)
            return
        if execution["status"] == "QUEUED":
            self.jobs.update_job_execution(jobId=job_id, thingName=self.thing_name, status="IN_PROGRESS")
        try:
            outcome = self.task.run(document)
        except DeploymentInterrupted:
            LOG.warning("Deployment interrupted: will not attempt rollback, regardless of policy")
            return
        self._finish(job_id, document, outcome)

    def _finish(self, job_id: str, document: Document, outcome: Outcome) -> None:
        self.outcomes.append((document.deployment_id, outcome))
        self._save_state()
        try:
            self.jobs.update_job_execution(
                jobId=job_id,
                thingName=self.thing_name,
                status=outcome.job_status,
                statusDetails=outcome.status_details(),
            )
        except ClientError:  # canceled meanwhile (a newer revision): the nucleus logs and moves on
            LOG.warning("could not report %s for job %s", outcome.job_status, job_id, exc_info=True)
        trigger = "THING_DEPLOYMENT" if document.group.startswith("thing/") else "THING_GROUP_DEPLOYMENT"
        self.fleet_status.send(trigger, {"document": document, "outcome": outcome})

    def _write_states(self) -> None:
        # never the kernel lock: this runs on lifecycle threads, which apply() may be waiting for
        services = self.kernel.services.copy()
        states = {
            name: {"version": s.spec.version, "state": s.state, "statusCodes": ",".join(s.status_codes)}
            for name, s in services.items()
        }
        with self._states_lock:
            temporary = self.paths.states_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(states, indent=1), encoding="utf-8")
            temporary.replace(self.paths.states_file)

    def _save_state(self) -> None:
        self.paths.config_dir.mkdir(parents=True, exist_ok=True)
        (self.paths.config_dir / "deployments.json").write_text(json.dumps(self.state.to_dict(), indent=1))

    # -- hooks ----------------------------------------------------------------------------------
    def _configuration(self, name: str) -> dict[str, Any]:
        return self.kernel.configuration(name)

    def _set_stream_manager_port(self, port: int) -> None:
        tree = self.kernel.configs.get(STREAM_MANAGER)
        if tree is not None:
            tree.merge({"STREAM_MANAGER_SERVER_PORT": str(port)}, 1 << 62)
            self.kernel.ipc.push_configuration_update(STREAM_MANAGER, tree.to_dict(), timeout_s=0.001)

    def _state_changed(self, service: Service, old: str, new: str) -> None:
        self._write_states()
        if self._started and new in STATUS_CHANGE_STATES:
            self.fleet_status.send("COMPONENT_STATUS_CHANGE")

    def _status_message(self, trigger: str, deployment: dict[str, Any] | None) -> dict[str, Any]:
        with self.kernel.lock:
            services = dict(self.kernel.services)
        roots: dict[str, list[str]] = {}
        for group, components in self.state.group_roots.items():
            for name in components:
                roots.setdefault(name, []).append(self.state.group_config_arns.get(group, ""))
        listed = [
            {
                "componentName": name,
                "version": service.spec.version,
                "fleetConfigArns": roots.get(name, []),
                "componentStatusDetails": {
                    "statusCodes": list(service.status_codes),
                    "statusReason": service.status_reason,
                },
                "isRoot": name in roots,
                "status": service.state,
            }
            for name, service in services.items()
        ]
        message: dict[str, Any] = {
            "ggcVersion": self.nucleus_version,
            "platform": self.platform["os"],
            "architecture": self.platform["architecture"],
            "runtime": "aws_nucleus_classic",
            "thing": self.thing_name,
            "overallDeviceStatus": overall_status({n: s.state for n, s in services.items()}),
            "messageType": "COMPLETE",
            "components": listed,
        }
        if deployment is not None:
            document: Document = deployment["document"]
            outcome: Outcome = deployment["outcome"]
            details = outcome.status_details()
            message["deploymentInformation"] = {
                "status": outcome.job_status,
                "fleetConfigurationArnForStatus": document.configuration_arn,
                "deploymentId": document.deployment_id,
                "statusDetails": {
                    "detailedStatus": outcome.status,
                    "failureCause": details.get("deployment-failure-cause", ""),
                    "errorStack": codes.error_stack(outcome.codes, outcome.status == codes.REJECTED)
                    if outcome.codes
                    else [],
                    "errorTypes": codes.error_types(outcome.codes, outcome.owner),
                },
            }
        return message
