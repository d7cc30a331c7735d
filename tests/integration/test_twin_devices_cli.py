"""`edgeml twin up --devices N --groups ...` as a user runs it: N device twins beside the cloud twin, each
a thing in the groups (made through the public IoT API), taking a deployment made with plain boto3;
`edgeml twin status` lists them with their components' states; `edgeml twin down` leaves no process of
theirs behind. Bad input is one line and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeml.twin.loopback import wait_for
from tests.integration.test_cloud_twin_cli import _client, _env_of, edgeml

EDGEML = str(Path(sys.executable).parent / "edgeml")


def _descendants(pid: int) -> dict[int, bytes]:
    """Every live process below `pid` (by parent pid, through /proc), with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(entry.name)] = int(fields[1])
    found: dict[int, bytes] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                try:
                    found[child] = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow
def test_devices_join_their_groups_take_a_deployment_and_leave_no_process_after_down(tmp_path):
    state_dir = tmp_path / "twin"
    started = edgeml("twin", "up", "--dir", str(state_dir), "--devices", "2", "--groups", "fleet,lab")
    assert started.returncode == 0, started.stderr
    env = _env_of(Path(edgeml("twin", "env", "--dir", str(state_dir)).stdout.strip()))
    twin_pid = int((state_dir / "twin.pid").read_text())
    things = ["edgeml-core-0", "edgeml-core-1"]
    try:
        iot, greengrass = _client("iot", env), _client("greengrassv2", env)
        for group in ("fleet", "lab"):
            members = iot.list_things_in_thing_group(thingGroupName=group)["things"]
            assert sorted(members) == things
        recipe = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": "com.example.Sleeper",
            "ComponentVersion": "1.0.0",
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"Run": "exec sleep 600"}}],
        }
        greengrass.create_component_version(inlineRecipe=json.dumps(recipe).encode())
        group_arn = iot.describe_thing_group(thingGroupName="fleet")["thingGroupArn"]
        greengrass.create_deployment(
            targetArn=group_arn, components={"com.example.Sleeper": {"componentVersion": "1.0.0"}}
        )

        def listed() -> str | None:
            status = edgeml("twin", "status", "--dir", str(state_dir))
            assert status.returncode == 0, status.stderr
            lines = [ln for ln in status.stdout.splitlines() if "com.example.Sleeper 1.0.0 RUNNING" in ln]
            return status.stdout if len(lines) == 2 else None

        shown = wait_for(listed, "both devices to list com.example.Sleeper RUNNING", timeout_s=90, every_s=1)
        assert "device twins (2)" in shown
        assert all(f"  {thing}: " in shown for thing in things)
        running = _descendants(twin_pid)
        sleepers = [pid for pid, command in running.items() if command.startswith(b"sleep\x00600")]
        assert len(sleepers) == 2  # one component process per device, under the twin
    finally:
        stopped = edgeml("twin", "down", "--dir", str(state_dir))
    assert stopped.returncode == 0, stopped.stderr
    left = [pid for pid in running if _alive(pid)]
    assert left == [], f"processes left after down: {[running[pid] for pid in left]}"
    assert not _alive(twin_pid)

    again = edgeml("twin", "up", "--dir", str(state_dir), "--devices", "2")  # the roots of this run
    assert again.returncode == 1
    assert again.stderr.startswith("error:") and again.stderr.count("\n") == 1
    assert "earlier `up`" in again.stderr
    assert sorted(p.name for p in (state_dir / "devices").iterdir()) == things  # left as they were
    assert not (state_dir / "twin.pid").exists()


def test_a_bad_group_name_is_a_usage_error_and_starts_nothing(tmp_path):
    state_dir = tmp_path / "twin"
    result = subprocess.run(
        [EDGEML, "twin", "up", "--dir", str(state_dir), "--devices", "1", "--groups", "fleet,no spaces"],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2
    assert "'no spaces' is not a thing group name" in result.stderr
    assert "Traceback" not in result.stderr
    assert not state_dir.exists()


def test_groups_without_devices_is_a_usage_error(tmp_path):
    result = edgeml("twin", "up", "--dir", str(tmp_path / "twin"), "--groups", "fleet")
    assert result.returncode == 2
    assert "add --devices N" in result.stderr
    assert not (tmp_path / "twin").exists()
