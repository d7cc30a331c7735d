"""Staged rollouts against a light fleet on the cloud twin (injected time): promote, gate, roll back."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloud_twin_harness import run_deploy

from edgeml.deploy.aws import Clients
from edgeml.deploy.errors import GateFailed
from edgeml.deploy.orchestrator import Orchestrator
from edgeml.deploy.report import write_reports
from edgeml.twin.fleet import VersionHealth
from tests.integration.rollout_kit import REGION, World, rings, world

GATE = {
    "minSucceeded": 1.0,
    "maxBroken": 0.0,
    "maxUnhealthy": 0.0,
    "maxErrorRate": 0.05,
    "maxLatencyP99Ms": 100,
    "minMeanConfidence": 0.6,
    "maxDriftPsi": 0.25,
    "minResultsPerDevice": 60,
}


def _baseline(w: World) -> None:
    spec = w.spec("base", "1.0.0", rings(w, soakSeconds=0))
    assert Orchestrator(w.clients, spec, w.time).run().outcome == "completed"
    assert w.versions() == {"1.0.0": len(w.fleet.agents)}


def test_a_good_version_is_promoted_through_every_ring(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        _baseline(w)
        spec = w.spec("good", "1.0.1", rings(w, gate=GATE))
        record = Orchestrator(w.clients, spec, w.time).run()
        assert record.outcome == "completed"
        assert w.versions() == {"1.0.1": len(w.fleet.agents)}
        assert [r for r, g in record.gates.items() if g.passed] == ["canary", "wave", "rest"]


BAD_VERSIONS = {
    "nan_outputs": (VersionHealth(error_rate=1.0), "errorRate"),
    "raises_at_start": (VersionHealth(fails_deployment=True), "succeeded"),
    "crash_loop_after_start": (VersionHealth(crash_after_start=True), "broken"),
    "confidence_collapse": (VersionHealth(mean_confidence=0.2), "meanConfidence"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD_VERSIONS))
def test_a_bad_version_trips_the_canary_gate_and_only_the_canary_is_rolled_back(
    tmp_path: Path, case: str
) -> None:
    health, metric = BAD_VERSIONS[case]
    with world(tmp_path, devices=12, versions={"1.0.1": health}) as w:
        _baseline(w)
        spec = w.spec("bad", "1.0.1", rings(w, gate=GATE))
        orchestrator = Orchestrator(w.clients, spec, w.time)
        with pytest.raises(GateFailed) as failed:
            orchestrator.run()
        record = orchestrator.record
        canary = record.plan.rings[0].devices if record.plan else []
        message = str(failed.value)
        assert "ring canary" in message and metric in message and canary[0] in message
        assert record.rolled_back == ["canary"]
        json_path, html_path = write_reports(record, tmp_path / "reports", 0.0)
        report = json.loads(json_path.read_text())
        failed_checks = [c for c in report["gates"]["canary"]["checks"] if not c["passed"]]
        assert metric in [c["metric"] for c in failed_checks] and report["rolledBack"] == ["canary"]
        page = html_path.read_text()
        assert "<svg" in page and metric in page and canary[0] in page
        assert not re.search(r"""(src|href)=["']?https?:""", page)  # offline: nothing fetched
        assert record.rollbacks["canary"] == {"SUCCEEDED": len(canary)}  # followed until every device had it
        assert w.versions() == {"1.0.0": len(w.fleet.agents)}
        gg = w.endpoint_client("greengrassv2")
        for group in (f"{w.parent}-wave", f"{w.parent}-rest"):
            arn = w.clients.thing_group_arn(group)
            names = [
                d["deploymentName"]
                for d in gg.list_deployments(targetArn=arn, historyFilter="ALL")["deployments"]
            ]
            assert names == [f"base-{w.suffix}-{group.rsplit('-', 1)[-1]}"]


@pytest.mark.slow
def test_a_ring_whose_devices_send_no_health_records_fails_its_metric_gate(tmp_path: Path) -> None:
    """Silence is not health: every device SUCCEEDED and RUNNING but none of their health records reached
    CloudWatch, so the error-rate gate (with no results-per-device floor to catch it) must fail the canary."""
    with world(tmp_path, devices=6, versions={"1.0.1": VersionHealth(publishes_health=False)}) as w:
        _baseline(w)
        spec = w.spec("mute", "1.0.1", rings(w, gate={"minSucceeded": 1.0, "maxErrorRate": 0.05}))
        orchestrator = Orchestrator(w.clients, spec, w.time)
        with pytest.raises(GateFailed) as failed:
            orchestrator.run()
        canary = orchestrator.record.plan.rings[0].devices if orchestrator.record.plan else []
        assert "errorRate no data" in str(failed.value) and canary[0] in str(failed.value)
        assert orchestrator.record.rolled_back == ["canary"]


def _with(w: World, **changes: object) -> None:
    w.fleet.set_behaviour(replace(w.fleet.behaviour, **changes))  # type: ignore[arg-type]


TIMEOUT_5_MIN = {"timeoutConfig": {"inProgressTimeoutInMinutes": 5}}


@pytest.mark.slow
def test_a_device_that_goes_silent_mid_rollout_counts_as_timed_out(tmp_path: Path) -> None:
    with world(tmp_path, devices=12) as w:
        _baseline(w)
        _with(w, silence_rate=0.25)
        ring_specs = rings(w, gate=GATE, iotJobConfiguration=TIMEOUT_5_MIN, settleTimeoutSeconds=1800)
        orchestrator = Orchestrator(w.clients, w.spec("silent", "1.0.1", ring_specs), w.time)
        with pytest.raises(GateFailed):
            orchestrator.run()
        silent = {t for t, a in w.fleet.agents.items() if a.silent}
        ring, result = list(orchestrator.record.gates.items())[-1]  # the failed ring: it held a silent device
        in_ring = {d.thing for d in result.devices}
        assert silent & in_ring
        timed_out = {d.thing for d in result.devices if d.status == "TIMED_OUT"}
        assert timed_out == silent & in_ring
        succeeded = next(c for c in result.checks if c.metric == "succeeded")
        assert not succeeded.passed and set(succeeded.devices) == silent & in_ring
        job = w.endpoint_client("iot").list_job_executions_for_job(jobId=_job_of(w, orchestrator, ring))
        statuses = {
            s["thingArn"].rsplit("/", 1)[-1]: s["jobExecutionSummary"]["status"]
            for s in job["executionSummaries"]
        }
        assert {
            t for t, s in statuses.items() if s == "TIMED_OUT"
        } == silent & in_ring  # the IoT job's own timeout


def _job_of(w: World, orchestrator: Orchestrator, ring: str) -> str:
    gg = w.endpoint_client("greengrassv2")
    group = orchestrator.spec.ring(ring).target_group
    for item in gg.list_deployments(targetArn=w.clients.thing_group_arn(group), historyFilter="ALL")[
        "deployments"
    ]:
        found = gg.get_deployment(deploymentId=item["deploymentId"])
        if (
            found["tags"].get("edgeml:kind") == "rollout"
            and found["tags"]["edgeml:rollout"] == orchestrator.spec.name
        ):
            return str(found["iotJobId"])
    raise AssertionError(f"no rollout deployment on {group}")


@pytest.mark.slow
def test_abort_criteria_stop_a_ring_on_their_own_and_the_rollout_rolls_back(tmp_path: Path) -> None:
    with world(tmp_path, devices=24, versions={"1.0.1": VersionHealth(fails_deployment=True)}) as w:
        _baseline(w)
        job = {
            "jobExecutionsRolloutConfig": {"maximumPerMinute": 2},
            "abortConfig": {
                "criteriaList": [
                    {
                        "failureType": "FAILED",
                        "action": "CANCEL",
                        "thresholdPercentage": 10,
                        "minNumberOfExecutedThings": 2,
                    }
                ]
            },
        }
        lenient = {"minSucceeded": 0.0}  # the gate alone would pass: the job's abort stops the ring
        ring_specs = [
            {
                "name": "all",
                "parentGroup": w.parent,
                "share": 1.0,
                "soakSeconds": 0,
                "gate": lenient,
                "iotJobConfiguration": job,
            }
        ]
        base_all = [{"name": "all", "parentGroup": w.parent, "share": 1.0, "soakSeconds": 0}]
        assert (
            Orchestrator(w.clients, w.spec("base-all", "1.0.0", base_all), w.time).run().outcome
            == "completed"
        )
        orchestrator = Orchestrator(w.clients, w.spec("abort", "1.0.1", ring_specs), w.time)
        with pytest.raises(GateFailed) as failed:
            orchestrator.run()
        assert "jobAborted" in str(failed.value)
        job_id = _job_of(w, orchestrator, "all")
        assert w.endpoint_client("iot").describe_job(jobId=job_id)["job"]["status"] == "CANCELED"
        statuses = _execution_statuses(w, job_id)
        assert statuses.get("FAILED", 0) >= 1
        reached = sum(statuses.values()) - statuses.get("CANCELED", 0)
        assert reached < len(w.fleet.agents)  # the rollout rate held the rest back, the abort stopped them
        assert orchestrator.record.rolled_back == ["all"]
        # the run followed its rollback until every device of the ring had it
        assert orchestrator.record.rollbacks["all"] == {"SUCCEEDED": len(w.fleet.agents)}
        assert w.versions() == {"1.0.0": len(w.fleet.agents)}


def _execution_statuses(w: World, job_id: str) -> dict[str, int]:
    answer = w.endpoint_client("iot").list_job_executions_for_job(jobId=job_id, maxResults=250)
    counts: dict[str, int] = {}
    for summary in answer["executionSummaries"]:
        status = summary["jobExecutionSummary"]["status"]
        counts[status] = counts.get(status, 0) + 1
    return counts


class _CancelDuring:
    """A rollout's waiter that runs `edgeml deploy cancel` (another orchestrator) once `ring` has begun."""

    def __init__(self, w: World, spec_ring: str, orchestrator: Orchestrator, command: str = "cancel") -> None:
        self.w, self.ring, self.orchestrator, self.done = w, spec_ring, orchestrator, False
        self.command = command

    def now(self) -> float:
        return self.w.time.now()

    def sleep(self, seconds: float) -> None:
        self.w.time.sleep(seconds)
        events = [e.what for e in self.orchestrator.record.events if e.ring == self.ring]
        if not self.done and any("created" in e for e in events):
            self.done = True
            getattr(Orchestrator(self.w.clients, self.orchestrator.spec, self.w.time), self.command)()


@pytest.mark.slow
def test_cancel_mid_ring_leaves_a_consistent_state(tmp_path: Path) -> None:
    with world(tmp_path, devices=16) as w:
        _baseline(w)
        slow = {"jobExecutionsRolloutConfig": {"maximumPerMinute": 1}}
        spec = w.spec("cancel", "1.0.1", rings(w, gate=GATE, iotJobConfiguration=slow))
        orchestrator = Orchestrator(w.clients, spec, w.time)
        orchestrator.waiter = _CancelDuring(w, "wave", orchestrator)
        assert orchestrator.run().outcome == "canceled"
        w.time.sleep(300)
        wave = orchestrator.spec.ring("wave")
        plan = {r.name: r.devices for r in orchestrator.record.plan.rings}  # type: ignore[union-attr]
        statuses = _execution_statuses(w, _job_of(w, orchestrator, "wave"))
        assert statuses.get("SUCCEEDED", 0) < len(plan["wave"])  # canceled before every device had it
        applied = w.ring_versions(plan["wave"])
        assert applied.get("1.0.1", 0) == statuses.get(
            "SUCCEEDED", 0
        )  # cancel changes no device that applied
        assert w.ring_versions(plan["canary"]) == {"1.0.1": len(plan["canary"])}
        assert w.ring_versions(plan["rest"]) == {"1.0.0": len(plan["rest"])}  # never touched
        gg = w.endpoint_client("greengrassv2")
        created = next(e.what for e in orchestrator.record.events if e.ring == "wave" and "created" in e.what)
        found = gg.get_deployment(deploymentId=created.split()[1])
        assert found["deploymentStatus"] == "CANCELED" and found["targetArn"].endswith(wave.target_group)
        again = Orchestrator(w.clients, spec, w.time).run()  # resume: nothing more is deployed
        assert again.outcome == "canceled"
        rest = w.clients.thing_group_arn(spec.ring("rest").target_group)
        assert [d["deploymentName"] for d in gg.list_deployments(targetArn=rest)["deployments"]] == [
            f"base-{w.suffix}-rest"
        ]


@pytest.mark.slow
def test_a_manual_ring_waits_for_promote_and_status_says_where_the_rollout_stands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with world(tmp_path, devices=10) as w:
        _baseline(w)
        ring_specs = rings(w, gate={"minSucceeded": 1.0})
        ring_specs[0]["manualPromotion"] = True
        spec = w.spec("manual", "1.0.1", ring_specs)
        assert Orchestrator(w.clients, spec, w.time).run().outcome == "awaiting-promotion"
        spec_path = tmp_path / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(_document(spec, w, ring_specs)))
        assert run_deploy("status", str(spec_path), "--json") == 0
        status = json.loads(capsys.readouterr().out)
        assert status["phase"] == "awaiting-promotion"
        assert [r.get("gate") for r in status["rings"]] == ["waiting", None, None]
        assert Orchestrator(w.clients, spec, w.time).run().outcome == "awaiting-promotion"  # still waits
        assert run_deploy("promote", str(spec_path)) == 0
        assert "ring canary promoted" in capsys.readouterr().out
        assert Orchestrator(w.clients, spec, w.time).run().outcome == "completed"
        assert w.versions() == {"1.0.1": len(w.fleet.agents)}


def _document(spec: object, w: World, ring_specs: list[dict[str, object]]) -> dict[str, object]:
    return {
        "name": spec.name,  # type: ignore[attr-defined]
        "components": {w.model: {"version": "1.0.1"}, w.app: {"version": "1.0.0"}},
        "health": {"metricNamespace": w.namespace},
        "pollSeconds": 30,
        "rings": ring_specs,
    }


@pytest.mark.slow
def test_a_rollback_by_hand_mid_ring_stops_the_running_rollout(tmp_path: Path) -> None:
    with world(tmp_path, devices=12) as w:
        _baseline(w)
        slow = {"jobExecutionsRolloutConfig": {"maximumPerMinute": 1}}
        spec = w.spec("by-hand", "1.0.1", rings(w, gate=GATE, iotJobConfiguration=slow))
        orchestrator = Orchestrator(w.clients, spec, w.time)
        orchestrator.waiter = _CancelDuring(w, "wave", orchestrator, "rollback")
        assert orchestrator.run().outcome == "superseded"  # it never goes on to the next ring
        assert w.versions() == {"1.0.0": len(w.fleet.agents)}  # canary and wave restored, rest untouched
        gg = w.endpoint_client("greengrassv2")
        rest = w.clients.thing_group_arn(spec.ring("rest").target_group)
        assert [d["deploymentName"] for d in gg.list_deployments(targetArn=rest)["deployments"]] == [
            f"base-{w.suffix}-rest"
        ]
        assert Orchestrator(w.clients, spec, w.time).run().outcome == "rolled-back"  # resume: nothing more


class _Crash(BaseException):
    """The orchestrator's process dies here (not an error it could handle)."""


class _CrashingClients(Clients):
    """Clients whose process dies at the `budget`-th AWS call: before the request is sent, or (after=True)
    once the service has done it but before the answer is read (the case client tokens exist for)."""

    def __init__(self, budget: int, after: bool) -> None:
        super().__init__(REGION)
        self.budget, self.after = budget, after

    def _client(self, service: str) -> Any:
        made = super()._client(service)
        made.meta.events.register("after-call.*.*" if self.after else "before-call.*.*", self._tick)
        return made

    def _tick(self, **_: Any) -> None:
        self.budget -= 1
        if self.budget == 0:
            raise _Crash()


@pytest.mark.slow
def test_killed_at_many_points_each_resume_goes_on_without_duplicate_or_lost_deployments(
    tmp_path: Path,
) -> None:
    with world(tmp_path, devices=10) as w:
        _baseline(w)
        spec = w.spec("crashy", "1.0.1", rings(w, gate=GATE))
        gg = w.endpoint_client("greengrassv2")

        def deployed() -> dict[str, int]:
            out = {}
            for ring in spec.rings:
                arn = w.clients.thing_group_arn(ring.target_group)
                items = gg.list_deployments(targetArn=arn, historyFilter="ALL")["deployments"]
                out[ring.name] = [d["deploymentName"] for d in items].count(f"{spec.name}-{ring.name}")
            return out

        outcome, seen_mid_rollout = "", []  # a full run here is ~130 calls; each resume re-plans (~20)
        for budget, after in [
            (20, False),
            (35, True),
            (28, False),
            (45, True),
            (40, False),
            (60, True),
            (0, False),
        ]:
            try:
                outcome = Orchestrator(_CrashingClients(budget, after), spec, w.time).run().outcome
                break
            except _Crash:
                seen_mid_rollout.append(sum(deployed().values()))
        assert outcome == "completed"
        assert any(0 < n < len(spec.rings) for n in seen_mid_rollout)  # some deaths came mid-rollout
        assert deployed() == {ring.name: 1 for ring in spec.rings}  # none twice, none lost
        assert w.versions() == {"1.0.1": len(w.fleet.agents)}
