"""The demo's core devices: nucleus twins (edgeml.twin.device.nucleus) in one thing group, which take
deployments from the cloud twin through the device-facing APIs and run the components from their
recipes as a nucleus does. The demo sets nothing up for a component that a nucleus would not: inputs are
files dropped in the app's input folder, and what the app produced is read back from its Stream Manager
streams, from the IoT Core publishes the device's IPC server forwarded, and from the device's logs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from stream_manager import ReadMessagesOptions, StreamManagerClient
from stream_manager.exceptions import NotEnoughMessagesException

from edgeml.twin.cloud.motoserver import pointed_at
from edgeml.twin.device.ipc.iotcore import MqttLogEntry
from edgeml.twin.device.nucleus import NucleusTwin
from edgeml.twin.device.nucleus.fleet import group_arn, provision, wait_effective
from edgeml.twin.loopback import free_port, wait_for

INFERENCE = "com.edgeml.Inference"
STREAM_MANAGER_DEFAULT_PORT = 8088
# The stream_manager SDK authenticates with this variable (the nucleus sets it to the component's SVCUID).
STREAM_MANAGER_TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
SUCCEEDED = frozenset({"SUCCEEDED", "COMPLETED"})


class DeploymentFailed(RuntimeError):
    """A device did not take a deployment."""


class DemoDevice:
    """One nucleus twin and what the demo reads from it."""

    def __init__(self, root: Path, thing_name: str, endpoint_url: str, system_path: str) -> None:
        self.thing_name = thing_name
        # Devices share this machine's loopback: Stream Manager's 8088 becomes a free port per device
        # (the nucleus twin's one port deviation; the device's StreamManager configuration shows it).
        self.twin = NucleusTwin(
            root,
            thing_name,
            endpoint_url,
            poll_s=0.2,
            port_map={STREAM_MANAGER_DEFAULT_PORT: free_port()},
            system_path=system_path,
        )

    def start(self) -> None:
        self.twin.start()

    def stop(self) -> None:
        self.twin.stop()

    # -- the app as the nucleus runs it ------------------------------------------------------------

    @property
    def app_configuration(self) -> dict[str, Any]:
        """The app's configuration as deployed (what GetConfiguration answers it)."""
        return self.twin.configuration(INFERENCE)

    @property
    def inputs(self) -> Path:
        """The app's input folder: InputDirectory, relative to the component's work folder."""
        return self.twin.paths.work_path(INFERENCE) / str(self.app_configuration["InputDirectory"])

    def state(self, component: str = INFERENCE) -> str | None:
        return self.twin.states().get(component)

    def versions(self) -> dict[str, str]:
        return {name: service.spec.version for name, service in self.twin.kernel.services.copy().items()}

    def app_starts(self) -> int:
        """How often the nucleus started the app (STARTING -> RUNNING in logs/com.edgeml.Inference.log)."""
        log = self.twin.log_path(INFERENCE)
        return log.read_text(errors="replace").count("-> RUNNING") if log.exists() else 0

    def stopped_on_sigterm(self) -> bool:
        """Every start of the app ended in its own clean stop on SIGTERM ("signal 15: stopping" in its log,
        written by edgeml_inference's handler), none in a crash or a kill."""
        log = self.twin.log_path(INFERENCE)
        text = log.read_text(errors="replace") if log.exists() else ""
        return text.count("signal 15: stopping") >= self.app_starts() > 0

    def app_log_tail(self, lines: int = 40) -> str:
        log = self.twin.log_path(INFERENCE)
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    # -- Stream Manager ----------------------------------------------------------------------------

    @contextmanager
    def _stream_client(self) -> Iterator[StreamManagerClient]:
        """The unmodified SDK client on the device's Stream Manager port, authenticated with the inference
        component's own token: the demo reads the app's streams as the app could (an inspection step; the
        app itself is given nothing of this)."""
        token = self.twin.kernel.ipc.component_env(INFERENCE)["SVCUID"]
        with (
            pointed_at({STREAM_MANAGER_TOKEN: token}),
            StreamManagerClient(port=self.twin.stream_manager.port) as client,
        ):
            yield client

    def read_stream(self, name: str, timeout_ms: int = 2000) -> list[dict[str, Any]]:
        """Every message of a local stream, as JSON; [] when the stream does not exist (yet)."""
        messages: list[dict[str, Any]] = []
        with self._stream_client() as client:
            if name not in client.list_streams():
                return messages
            while True:
                options = ReadMessagesOptions(
                    desired_start_sequence_number=len(messages),
                    min_message_count=1,
                    max_message_count=1000,
                    read_timeout_millis=timeout_ms if not messages else 0,
                )
                try:
                    batch = client.read_messages(name, options)
                except NotEnoughMessagesException:
                    return messages
                messages += [json.loads(message.payload) for message in batch]

    def export_errors(self, stream: str) -> list[str]:
        """The error messages `describe_message_stream` reports for the stream's exporters."""
        with self._stream_client() as client:
            if stream not in client.list_streams():
                return []
            statuses = client.describe_message_stream(stream).export_statuses or []
        return [str(status.error_message) for status in statuses if status.error_message]

    # -- IoT Core ----------------------------------------------------------------------------------

    @property
    def mqtt_log(self) -> list[MqttLogEntry]:
        return self.twin.kernel.ipc.mqtt_log

    def wait_iot_core_forwarded(self) -> bool:
        return self.twin.kernel.ipc.wait_iot_core_forwarded()


def processes_under(folder: Path) -> list[int]:
    """Processes whose working directory is inside `folder` (Linux /proc): a device's component processes
    run in its work folders."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _settled(device: DemoDevice, component: str) -> bool:
    return device.state(component) in ("RUNNING", "BROKEN", "ERRORED")


class DemoFleet:
    """Device twins provisioned into thing groups (as the nucleus installer's --provision does), `groups`
    giving each group's device count; each device is rooted under `root` and in exactly one group."""

    def __init__(
        self, root: Path, endpoint_url: str, groups: Mapping[str, int], system_path: str, prefix: str
    ) -> None:
        self.endpoint_url = endpoint_url
        self.root = root
        self.members: dict[str, list[DemoDevice]] = {}
        number = 0
        for group, count in groups.items():
            self.members[group] = []
            for _ in range(count):
                number += 1
                thing = f"{prefix}-{number}"
                self.members[group].append(DemoDevice(root / thing, thing, endpoint_url, system_path))
        # the nucleus twins log an unreachable cloud at WARNING: into the work folder, not the console
        handler = logging.FileHandler(root.parent / "nucleus-twins.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        twin_logger = logging.getLogger("edgeml.twin")
        twin_logger.addHandler(handler)
        twin_logger.propagate = False
        self._handler = handler

    @property
    def devices(self) -> list[DemoDevice]:
        return [device for members in self.members.values() for device in members]

    def things(self, group: str | None = None) -> list[str]:
        devices = self.devices if group is None else self.members[group]
        return [device.thing_name for device in devices]

    def start(self) -> None:
        for group, members in self.members.items():
            for device in members:
                provision(self.endpoint_url, device.thing_name, [group])
                device.start()

    def stop(self) -> None:
        """Stops every device twin, then waits until the component processes it signalled have exited (a
        process group outlives the step's shell by the app's own shutdown)."""
        try:
            for device in self.devices:
                device.stop()
            wait_for(lambda: not processes_under(self.root), "the devices' component processes to exit", 20)
        finally:
            logging.getLogger("edgeml.twin").removeHandler(self._handler)
            self._handler.close()

    def deploy(self, name: str, components: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
        """CreateDeployment of `components` to each thing group (one deployment per group, as a deployer
        does for groups that are later rolled out to separately), waited on until every device finished
        it; each device's effective deployment status. A device that did not succeed is a DeploymentFailed
        naming it and the reason GreengrassV2 gives."""
        greengrass = boto3.client("greengrassv2")
        created = {
            group: greengrass.create_deployment(
                targetArn=group_arn(self.endpoint_url, group),
                deploymentName=f"{name}-{group}",
                components={component: dict(spec) for component, spec in components.items()},
            )["deploymentId"]
            for group in self.members
        }
        effective: dict[str, dict[str, Any]] = {}
        for group, deployment_id in created.items():
            effective.update(wait_effective(self.endpoint_url, deployment_id, self.things(group), 300))
        statuses = {thing: str(entry["coreDeviceExecutionStatus"]) for thing, entry in effective.items()}
        failed = {thing: status for thing, status in statuses.items() if status not in SUCCEEDED}
        if failed:
            details = "; ".join(
                f"{thing}: {status} {effective[thing].get('reason', '')}".strip()
                for thing, status in failed.items()
            )
            raise DeploymentFailed(f"deployment {name} failed on {details}")
        return statuses

    def wait_running(self, component: str = INFERENCE, timeout_s: float = 120) -> None:
        for device in self.devices:
            wait_for(
                partial(_settled, device, component),
                f"{component} RUNNING on {device.thing_name}",
                timeout_s=timeout_s,
            )
            if device.state(component) != "RUNNING":
                raise DeploymentFailed(
                    f"{component} is {device.state(component)} on {device.thing_name}; its log ends:\n"
                    f"{device.app_log_tail()}"
                )


def cloud_view(thing: str) -> dict[str, Any]:
    """What GreengrassV2 says of a core device (from its fleet status messages): status, and the version
    of each root component installed (ListInstalledComponents, topologyFilter ROOT)."""
    greengrass = boto3.client("greengrassv2")
    device = greengrass.get_core_device(coreDeviceThingName=thing)
    installed = greengrass.list_installed_components(coreDeviceThingName=thing, topologyFilter="ROOT")
    return {
        "status": str(device.get("status", "")),
        "root components": {
            str(c["componentName"]): str(c["componentVersion"]) for c in installed["installedComponents"]
        },
        "states": {
            str(c["componentName"]): str(c["lifecycleState"]) for c in installed["installedComponents"]
        },
    }
