"""scripts/demo's main job as a user runs it: `python -m edgeml.demo`, judged by what came back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

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


def test_demo_takes_the_model_to_a_simulated_device_and_the_results_to_the_cloud_twin(tmp_path: Path) -> None:
    # relative --work and --json are the caller's, not the repository's
    completed = run_demo("--work", "work", "--images", "40", "--json", "my-summary.json", caller=tmp_path)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    summary_path = tmp_path / "my-summary.json"
    summary = json.loads(summary_path.read_text())
    assert f"summary: {summary_path}" in completed.stdout.splitlines()
    assert not (REPO / "my-summary.json").exists() and not (REPO / "work").exists()
    assert (tmp_path / "work" / MARKER).is_file()  # the demo's own folder: the next run may empty it

    assert {v["target"] for v in summary["variants"]} == {"cpu-fp32", "cpu-opt", "cpu-fp16", "cpu-int8"}
    assert all(v["accuracy_top1"] >= 0.97 for v in summary["variants"])
    int8 = next(v for v in summary["variants"] if v["target"] == "cpu-int8")
    fp32 = next(v for v in summary["variants"] if v["target"] == "cpu-fp32")
    assert int8["bytes"] < fp32["bytes"] / 2

    # published through the cloud twin's GreengrassV2 API (recorded once DEPLOYABLE)
    assert summary["published"] == {
        "com.edgeml.Inference": "1.0.0",
        "com.edgeml.Runtime": "1.0.0",
        "com.edgeml.model.Digits": "1.0.1",
    }
    assert "NOT deployed through the control plane" in completed.stdout  # stage 1 says what it skips
    assert summary["components"] == {
        "com.edgeml.Inference": "1.0.0",
        "com.edgeml.Runtime": "1.0.0",
        "com.edgeml.model.Digits": "1.0.1",
    }
    results = summary["results"]
    # 40 images + one corrupt file: every one answered, the corrupt one with its reason
    assert results["total"] == 41 and results["ok"] == 40
    assert results["errors"] == {"corrupt_image": 1}
    assert results["accuracy"] >= 0.9
    # a third before the model update, the rest after it, with no restart in between
    assert results["by_model_version"] == {"1.0.0": 13, "1.0.1": 27}
    assert summary["hot_swap"] == {"from": "1.0.0", "to": "1.0.1"}
    # the last third was answered with the cloud twin down, buffered in the stream, exported after
    assert summary["offline"]["results answered while the cloud was down"] == 14
    assert summary["offline"]["export errors reported while down"] >= 1

    exports = summary["exports"]
    assert exports["records exported to Kinesis"] == 41
    assert exports["Kinesis records in stream order, none missing"] is True
    assert exports["results published to IoT Core (QoS 1)"] == 41
    assert exports["of those forwarded to the cloud twin"] == 41  # QoS 1: spooled while offline
    assert exports["files moved to done/"] == 40
    assert exports["files moved to failed/ (with a .json reason)"] == 1
    assert exports["health reports in the health stream"] >= 1
    assert summary["app_exit_code"] == 0
    assert "What came back" in completed.stdout


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
