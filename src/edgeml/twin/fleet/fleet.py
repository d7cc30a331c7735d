"""A light fleet: thousands of `LightAgent`s in one process, stepped on the twin's (injectable) clock.

A nucleus learns of a new job from the MQTT push `$aws/things/{thing}/jobs/notify-next`; the twin has no
MQTT broker, so each `step` stands in for that push with the IoT API (ListJobs IN_PROGRESS, then
ListJobExecutionsForJob status=QUEUED per job), and only the devices named there call
StartNextPendingJobExecution themselves. Everything a device reports goes through iot-jobs-data and
iot-data Publish over plain boto3, so the control plane, the topic rules and CloudWatch see what they would
see from real devices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from edgeml.twin.fleet.agent import LightAgent
from edgeml.twin.fleet.behaviour import FleetBehaviour

_CONFIG = Config(retries={"total_max_attempts": 2}, max_pool_connections=8)


class Boto3DeviceApi:
    """The device-facing calls through boto3 clients (pointed at the twin by `client_kwargs`)."""

    def __init__(self, **client_kwargs: Any) -> None:
        self.jobs = boto3.client("iot-jobs-data", config=_CONFIG, **client_kwargs)
        self.data = boto3.client("iot-data", config=_CONFIG, **client_kwargs)
        self.iot = boto3.client("iot", config=_CONFIG, **client_kwargs)
        self.greengrass = boto3.client("greengrassv2", config=_CONFIG, **client_kwargs)
        self.calls = 0

    def start_next(self, thing: str) -> dict[str, Any]:
        self.calls += 1
        answer: dict[str, Any] = self.jobs.start_next_pending_job_execution(thingName=thing)
        return answer

    def update(self, thing: str, job_id: str, status: str, details: dict[str, str]) -> bool:
        self.calls += 1
        try:
            self.jobs.update_job_execution(
                jobId=job_id, thingName=thing, status=status, statusDetails=details
            )
        except ClientError as error:  # TIMED_OUT or CANCELED meanwhile: the cloud has the last word
            if error.response["Error"]["Code"] in (
                "InvalidStateTransitionException",
                "ResourceNotFoundException",
            ):
                return False
            raise
        return True

    def publish(self, topic: str, payload: bytes) -> None:
        self.calls += 1
        self.data.publish(topic=topic, qos=1, payload=payload)

    def resolve(self, group: str, components: dict[str, str]) -> str | None:
        self.calls += 1
        candidates = [
            {
                "componentName": name,
                "componentVersion": version,
                "versionRequirements": {group: f"={version}"},
            }
            for name, version in sorted(components.items())
        ]
        try:
            self.greengrass.resolve_component_candidates(
                platform={"name": "linux", "attributes": {"os": "linux", "architecture": "amd64"}},
                componentCandidates=candidates,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ResourceNotFoundException", "ValidationException"):
                return str(error.response["Error"].get("Message", ""))
            raise
        return None

    def queued_things(self) -> set[str]:
        """Things with a QUEUED execution of an in-progress job (the notify-next push, see the module doc)."""
        things: set[str] = set()
        for job in _pages(self.iot.list_jobs, "jobs", status="IN_PROGRESS", maxResults=250):
            job_id = job["jobId"]
            try:
                self.iot.describe_job(jobId=job_id)  # the rollout rate moves on when the job is read
                summaries = _pages(
                    self.iot.list_job_executions_for_job,
                    "executionSummaries",
                    jobId=job_id,
                    status="QUEUED",
                    maxResults=250,
                )
                things.update(s["thingArn"].rsplit("/", 1)[-1] for s in summaries)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
        return things


def _pages(method: Any, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    token: str | None = None
    while True:
        answer = method(**kwargs, **({"nextToken": token} if token else {}))
        items.extend(answer.get(key) or [])
        token = answer.get("nextToken")
        if not token:
            return items


@dataclass
class LightFleet:
    api: Boto3DeviceApi
    behaviour: FleetBehaviour
    agents: dict[str, LightAgent] = field(default_factory=dict)

    @classmethod
    def of(cls, things: Iterable[str], behaviour: FleetBehaviour, api: Boto3DeviceApi) -> LightFleet:
        return cls(api, behaviour, {thing: LightAgent(thing, behaviour) for thing in things})

    def provision(self, groups: dict[str, list[str]]) -> None:
        """Creates the things and thing groups (IoT API) and puts each thing in its groups."""
        iot = self.api.iot
        for thing in self.agents:
            iot.create_thing(thingName=thing)
        for group, members in groups.items():
            iot.create_thing_group(thingGroupName=group)
            for thing in members:
                iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)

    def set_behaviour(self, behaviour: FleetBehaviour) -> None:
        """New fault rates and version health for every agent (from the next deployment they take)."""
        self.behaviour = behaviour
        for agent in self.agents.values():
            agent.behaviour = behaviour

    def step(self, now: float) -> int:
        """One tick at `now` (epoch seconds on the twin's clock); returns how many jobs agents took."""
        taken = 0
        for thing in sorted(self.api.queued_things()):
            agent = self.agents.get(thing)
            if agent is not None and agent.take(self.api, now):
                taken += 1
        for agent in self.agents.values():
            agent.step(self.api, now)
        return taken

    def versions(self, component: str) -> dict[str, int]:
        """How many devices run each version of a component (devices without it under '')."""
        counts: dict[str, int] = {}
        for agent in self.agents.values():
            entry = agent.installed().get(component)
            version = entry["version"] if entry else ""
            counts[version] = counts.get(version, 0) + 1
        return counts
