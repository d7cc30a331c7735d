"""scripts/demo's main job as a user runs it: `python -m edgeml.demo`, judged by what came back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgeml.demo.workdir import MARKER

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def demo_env(caller: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_ENDPOINT_URL")}
    env.pop("EDGEML_CALLER_CWD", None)
    if caller is not None:  # as scripts/demo passes it: python runs in the repository
        env["EDGEML_CALLER_CWD"] = str(caller)
    return env


def run_demo(*args: str, caller: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeml.demo", *args],
        cwd=REPO,
        env=demo_env(caller),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@dataclass
class DemoRun:
    completed: subprocess.CompletedProcess[str]
    summary: dict[str, Any]
    caller: Path

    @property
    def things(self) -> list[str]:
        return sorted(self.summary["devices"])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One demo run as a user starts it, with relative --work and --json (the caller's, not the repo's)."""
    caller = tmp_path_factory.mktemp("caller")
    completed = run_demo("--work", "work", "--images", "40", "--json", "my-summary.json", caller=caller)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return DemoRun(completed, json.loads((caller / "my-summary.json").read_text()), caller)


VERSIONS = {
    "com.edgeml.Inference": "1.0.0",
    "com.edgeml.Runtime": "1.0.0",
    "com.edgeml.model.Digits": "1.0.1",
}


def test_the_demo_writes_where_the_caller_said(demo_run: DemoRun) -> None:
    summary_path = demo_run.caller / "my-summary.json"
    assert f"summary: {summary_path}" in demo_run.completed.stdout.splitlines()
    assert not (REPO / "my-summary.json").exists() and not (REPO / "work").exists()
    assert (demo_run.caller / "work" / MARKER).is_file()  # the demo's own folder: the next run may empty it


def test_the_model_is_compiled_to_four_variants(demo_run: DemoRun) -> None:
    variants = demo_run.summary["variants"]
    assert {v["target"] for v in variants} == {"cpu-fp32", "cpu-opt", "cpu-fp16", "cpu-int8"}
    assert all(v["accuracy_top1"] >= 0.97 for v in variants)
    int8 = next(v for v in variants if v["target"] == "cpu-int8")
    fp32 = next(v for v in variants if v["target"] == "cpu-fp32")
    assert int8["bytes"] < fp32["bytes"] / 2


def test_components_are_published_and_deployed_through_the_control_plane(demo_run: DemoRun) -> None:
    summary, things = demo_run.summary, demo_run.things
    # published through the cloud twin's GreengrassV2 API (recorded once DEPLOYABLE)
    assert summary["published"] == VERSIONS
    assert len(things) >= 2
    [first] = summary["deployments"]
    assert first["name"] == "edgeml-demo" and first["devices"] == dict.fromkeys(things, "SUCCEEDED")
    # what GreengrassV2 says each core device runs, from the devices' own fleet status messages
    assert summary["components"] == VERSIONS
    for view in summary["devices"].values():
        assert view["status"] == "HEALTHY"
        assert view["root components"] == VERSIONS
        assert view["states"]["com.edgeml.Inference"] == "RUNNING"


def test_the_model_update_is_a_staged_rollout_with_a_gated_canary(demo_run: DemoRun) -> None:
    rollout = demo_run.summary["rollout"]
    assert rollout["outcome"] == "completed", rollout["failure"]
    canary, fleet = rollout["rings"]
    assert canary["ring"] == "canary" and fleet["ring"] == "fleet"
    assert sorted(canary["devices"] + fleet["devices"]) == demo_run.things  # every device in one ring
    assert canary["devices"] and fleet["devices"]
    assert canary["soak s"] > 0 and canary["gate passed"] is True
    assert {"succeeded", "broken", "unhealthy"} <= set(canary["gate"])
    assert all(check["passed"] for check in canary["gate"].values())
    assert canary["events"][0].startswith("deployment ") and "gate passed; promoted" in canary["events"]
    assert fleet["events"][0].startswith("deployment ")
    # results: a third before the update, the rest after it, on every device
    assert demo_run.summary["results"]["by_model_version"] == {"1.0.0": 13, "1.0.1": 27}
    update = demo_run.summary["model_update"]
    assert update["from"] == "1.0.0" and update["to"] == "1.0.1"
    assert sorted(update["app restarts by the nucleus"]) == demo_run.things


def test_every_input_is_answered_and_read_back_from_the_cloud(demo_run: DemoRun) -> None:
    summary = demo_run.summary
    results = summary["results"]
    # 40 images + one corrupt file: every one answered, the corrupt one with its reason
    assert results["total"] == 41 and results["ok"] == 40
    assert results["errors"] == {"corrupt_image": 1}
    assert results["accuracy"] >= 0.9
    assert sum(each["results"] for each in summary["per_device"].values()) == 41
    assert all(each["results"] > 0 for each in summary["per_device"].values())  # every device took inputs
    # the last third was answered with the cloud twin down, buffered on the device, sent after
    assert summary["offline"]["results answered while the cloud was down"] == 14
    assert summary["offline"]["export errors reported while down"] >= 1
    assert summary["offline"]["IoT Core publishes spooled while down"] >= 1
    exports = summary["exports"]
    assert exports["records exported to Kinesis"] == 41
    assert exports["Kinesis records in each device's stream order, none missing"] is True
    assert exports["results in them"] == 41  # the IoT Core publishes carry every result, batched
    assert exports["results in those forwarded to the cloud twin"] == 41  # QoS 1: spooled while offline
    assert 1 <= exports["IoT Core publishes of results (QoS 1, batched)"] < 41
    assert exports["files moved to done/"] == 40
    assert exports["files moved to failed/ (with a .json reason)"] == 1
    assert exports["health reports in the health streams"] >= 1
    assert exports["health records published to IoT Core"] >= 1  # what the fleet's health rules read
    assert summary["apps_stopped_on_sigterm"] == dict.fromkeys(demo_run.things, True)
    assert summary["app_exit_code"] == 0


def test_the_tables_list_every_row(demo_run: DemoRun) -> None:
    stdout, summary = demo_run.completed.stdout, demo_run.summary
    table = stdout[stdout.index("What came back") :]
    for row in [*summary["offline"], *summary["exports"], "results per model version", "model update"]:
        assert row in table, row
    for thing in demo_run.things:
        assert f"results from {thing}" in table
    assert "Staged rollout edgeml-demo-model-1-0-1: completed" in stdout


def test_the_devices_health_records_reach_cloudwatch(demo_run: DemoRun) -> None:
    assert demo_run.summary["rollout"]["CloudWatch health metrics of the devices"] > 0


def test_demo_refuses_an_image_count_outside_the_holdout(tmp_path: Path) -> None:
    completed = run_demo("--work", str(tmp_path / "work"), "--images", "1000")
    assert completed.returncode == 1
    assert "--images must be between 3 and 360" in completed.stderr
    assert not (tmp_path / "work").exists()


def _processes_under(folder: Path) -> list[int]:
    """Processes whose working directory is inside `folder` (the inference app runs in the device dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")).is_relative_to(folder):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_ctrl_c_stops_the_app_and_the_twins_and_exits_130(tmp_path: Path) -> None:
    work = tmp_path / "work"
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeml.demo", "--work", str(work), "--images", "30"],
        cwd=REPO, env=demo_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the first images are dropped once the app is running
        if "inference: " in line:
            break
    else:
        raise AssertionError(process.communicate())
    assert _processes_under(work), "the inference app should be running"
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert _processes_under(work) == []
