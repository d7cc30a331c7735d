"""What the control plane's API facades share: the state, one lock, the clock, moto's IoT and S3 backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeml.twin.cloud.controlplane import state as state_io
from edgeml.twin.cloud.controlplane.arns import parse_target_arn
from edgeml.twin.cloud.controlplane.jobs import Job
from edgeml.twin.cloud.service import Clock

CLIENT_TOKEN_SECONDS = 8 * 3600


class Core:
    def __init__(
        self,
        state_dir: Path,
        clock: Clock,
        moto_iot: Callable[[str], Any],
        moto_s3: Callable[[], Any],
    ) -> None:
        self.state_dir = state_dir
        self.clock = clock
        self.moto_iot = moto_iot
        self.moto_s3 = moto_s3
        self.lock = threading.RLock()
        self.state = state_io.load(state_dir)

    def now(self) -> float:
        return self.clock.now().timestamp()

    # --- idempotency (BOTO clientToken: successful responses are cached for up to 8 hours) ------
    def remembered(self, token: str | None, operation: str) -> str | None:
        """The resource a successful `operation` with this token made, while the token is fresh."""
        if not token:
            return None
        entry = self.state.client_tokens.get(token)
        if (
            entry is None
            or entry["operation"] != operation
            or self.now() - entry["at"] > CLIENT_TOKEN_SECONDS
        ):
            return None
        return str(entry["resource"])

    def remember(self, token: str | None, operation: str, resource: str) -> None:
        if token:
            self.state.client_tokens[token] = {"operation": operation, "resource": resource, "at": self.now()}

    def save(self) -> None:
        with self.lock:
            state_io.save(self.state, self.state_dir)

    # --- moto's IoT registry -------------------------------------------------------------------
    def thing_names(self, region: str) -> set[str]:
        return {thing.thing_name for thing in self.moto_iot(region).things.values()}

    def thing_exists(self, region: str, account: str, name: str) -> bool:
        backend = self.moto_iot(region)
        return f"arn:aws:iot:{region}:{account}:thing/{name}" in backend.things or any(
            thing.thing_name == name for thing in backend.things.values()
        )

    def group(self, region: str, arn: str) -> Any | None:
        backend = self.moto_iot(region)
        found = backend.thing_groups.get(arn)
        if found is not None:
            return found
        name = arn.split("thinggroup/", 1)[-1]
        return next((g for g in backend.thing_groups.values() if g.thing_group_name == name), None)

    def group_members(self, region: str, arn: str) -> list[str]:
        """Things in the group and in its child groups, each once, in the order they were added.

        A deployment to a thing group reaches the things of its child groups too: the nucleus counts a
        device's parent groups as its own (NUC ThingGroupHelper: "adding parent thing groups").
        """
        group = self.group(region, arn)
        if group is None:
            return []
        groups = self.moto_iot(region).thing_groups.values()
        members: dict[str, None] = {}
        pending = [group]
        seen = {group.arn}
        while pending:
            current = pending.pop(0)
            members.update((thing.thing_name, None) for thing in current.things.values())
            for child in groups:
                if child.parent_group_name == current.thing_group_name and child.arn not in seen:
                    seen.add(child.arn)
                    pending.append(child)
        return list(members)

    def direct_groups_of_thing(self, region: str, account: str, thing: str) -> list[Any]:
        """The groups the thing was added to (moto's IoT membership), in moto's order."""
        arn = f"arn:aws:iot:{region}:{account}:thing/{thing}"
        return [group for group in self.moto_iot(region).thing_groups.values() if arn in group.things]

    def root_to_parent(self, region: str, group: Any) -> list[Any]:
        """The group's ancestors, root first (IoT's `rootToParentThingGroups`)."""
        by_name = {g.thing_group_name: g for g in self.moto_iot(region).thing_groups.values()}
        chain: list[Any] = []
        current = by_name.get(group.parent_group_name) if group.parent_group_name else None
        while current is not None and current not in chain:
            chain.append(current)
            current = by_name.get(current.parent_group_name) if current.parent_group_name else None
        return chain[::-1]

    def groups_of_thing(self, region: str, account: str, thing: str) -> list[Any]:
        """The thing's groups and their ancestors (the groups whose deployments reach it; the set the
        nucleus's ThingGroupHelper builds from ListThingGroupsForCoreDevice)."""
        found: dict[str, Any] = {}
        for group in self.direct_groups_of_thing(region, account, thing):
            for member in [group, *reversed(self.root_to_parent(region, group))]:
                found.setdefault(member.arn, member)
        return list(found.values())

    # --- time and membership -------------------------------------------------------------------
    def advance_job(self, job: Job, now: float) -> None:
        for thing in job.advance(now):
            self.state.index_execution(thing, job.job_id)

    def sync_group_job(self, job: Job, now: float) -> None:
        """A continuous group job: joiners get an execution now; QUEUED executions of leavers are REMOVED."""
        if job.status != "IN_PROGRESS" or not job.is_group:
            return
        target = parse_target_arn(job.target_arn)
        members = self.group_members(target.region, job.target_arn)
        member_set = set(members)
        waiting = set(job.pending)
        for thing in members:
            if thing not in job.executions and thing not in waiting:
                job.notify(thing, now)
                self.state.index_execution(thing, job.job_id)
        if waiting - member_set:
            job.pending = [t for t in job.pending if t in member_set]
        for thing, execution in job.executions.items():
            if execution.status == "QUEUED" and thing not in member_set:
                job.set_status(execution, "REMOVED", now)

    def sync_thing(self, region: str, account: str, thing: str, now: float) -> None:
        """Lazily, when a device asks: its groups' active jobs learn it joined; due rollout/timeouts apply."""
        group_arns = {g.arn for g in self.groups_of_thing(region, account, thing)}
        for job in self.state.jobs.values():
            if job.status != "IN_PROGRESS":
                continue
            joined = job.is_group and job.target_arn in group_arns
            if joined and thing not in job.executions and thing not in job.pending:
                job.notify(thing, now)
                self.state.index_execution(thing, job.job_id)
            if thing in job.executions or thing in job.pending:
                self.advance_job(job, now)

    def tick(self) -> None:
        """Apply everything due: rollout windows, timeouts, aborts, group membership changes."""
        with self.lock:
            now = self.now()
            for job in list(self.state.jobs.values()):
                if job.status == "IN_PROGRESS":
                    self.advance_job(job, now)
                    self.sync_group_job(job, now)
                    job.check_abort(now)
