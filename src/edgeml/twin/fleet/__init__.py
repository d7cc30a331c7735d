"""The light device mode: simulated agents in one process that take deployments like a nucleus."""

from edgeml.twin.fleet.agent import LightAgent
from edgeml.twin.fleet.behaviour import FleetBehaviour, VersionHealth
from edgeml.twin.fleet.fleet import Boto3DeviceApi, LightFleet

__all__ = ["Boto3DeviceApi", "FleetBehaviour", "LightAgent", "LightFleet", "VersionHealth"]
