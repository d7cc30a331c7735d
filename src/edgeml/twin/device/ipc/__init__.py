"""Greengrass IPC twin: the nucleus' eventstream RPC service that the unmodified awsiotsdk
`GreengrassCoreIPCClientV2` talks to, one `IpcServer` per simulated core device."""

from edgeml.twin.device.ipc.config_events import ValidityReport
from edgeml.twin.device.ipc.iotcore import MqttLogEntry
from edgeml.twin.device.ipc.server import IpcServer, short_socket_path
from edgeml.twin.device.ipc.updates import Deferral

__all__ = ["Deferral", "IpcServer", "MqttLogEntry", "ValidityReport", "short_socket_path"]
