"""Everything the control plane knows, with its indexes, saved as one JSON file in the state directory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeml.twin.cloud.controlplane.jobs import Job
from edgeml.twin.cloud.persistence import StateUnreadable

STATE_FILE = "controlplane.json"
FORMAT = 2  # 2: job executions as rows, client tokens with their time


@dataclass
class State:
    # component version ARN -> record (name, version, owner, region, recipe, status, digests...)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    # deployment id -> record
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    # target ARN -> last revision number / latest deployment id
    revisions: dict[str, int] = field(default_factory=dict)
    latest_for_target: dict[str, str] = field(default_factory=dict)
    # job id -> job (executions inside)
    jobs: dict[str, Job] = field(default_factory=dict)
    # core device thing name -> record (status, platform, installed components...)
    core_devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    # ARN -> tags (components, component versions, deployments, core devices)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    # client token -> (operation, result) for idempotent creates
    client_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    # derived, not saved: thing name -> job ids with an execution for it (creation order)
    jobs_by_thing: dict[str, list[str]] = field(default_factory=dict)

    def index_execution(self, thing: str, job_id: str) -> None:
        self.jobs_by_thing.setdefault(thing, []).append(job_id)

    def rebuild_indexes(self) -> None:
        self.jobs_by_thing = {}
        for job in sorted(self.jobs.values(), key=lambda j: j.created_at):
            for thing in job.executions:
                self.index_execution(thing, job.job_id)

    # --- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "components": self.components,
            "deployments": self.deployments,
            "revisions": self.revisions,
            "latest_for_target": self.latest_for_target,
            "jobs": [job.to_dict() for job in self.jobs.values()],
            "core_devices": self.core_devices,
            "tags": self.tags,
            "client_tokens": self.client_tokens,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        state = cls(
            components=data["components"],
            deployments=data["deployments"],
            revisions=data["revisions"],
            latest_for_target=data["latest_for_target"],
            jobs={j["job_id"]: Job.from_dict(j) for j in data["jobs"]},
            core_devices=data["core_devices"],
            tags=data["tags"],
            client_tokens=data.get("client_tokens", {}),
        )
        state.rebuild_indexes()
        return state


def load(state_dir: Path) -> State:
    """The saved state, an empty one for a new directory, or StateUnreadable naming the file."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return State()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise StateUnreadable(
                f"{path}: control plane state format {data.get('format')!r}; this twin reads {FORMAT} "
                "(start from an empty state directory)"
            )
        return State.from_json(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise StateUnreadable(f"{path}: the control plane state cannot be read ({error})") from error


def save(state: State, state_dir: Path) -> None:
    """Written to a temporary file and renamed over the old one, so a crash never leaves half a file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(state.to_json(), separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, path)
