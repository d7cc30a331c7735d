"""`edgeml twin up/down/status/env` as a user runs them: a background twin whose state (S3 objects,
things, groups, components, deployments) survives `down` and `up` again; bad input is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from edgeml.twin.cloud.instance import is_twin_process
from edgeml.twin.loopback import wait_for

EDGEML = str(Path(sys.executable).parent / "edgeml")


def edgeml(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGEML, *args], capture_output=True, text=True, timeout=120, check=False)


def _env_of(env_file: Path) -> dict[str, str]:
    values = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = value.strip("'")
    return values


def _client(service: str, env: dict[str, str]) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _up(state_dir: Path) -> dict[str, str]:
    started = edgeml("twin", "up", "--dir", str(state_dir))
    assert started.returncode == 0, started.stderr
    env_path = edgeml("twin", "env", "--dir", str(state_dir))
    assert env_path.returncode == 0, env_path.stderr
    env = _env_of(Path(env_path.stdout.strip()))
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    return env


@pytest.mark.slow
def test_state_survives_down_and_up_and_a_second_up_is_refused(tmp_path):
    state_dir = tmp_path / "twin"
    env = _up(state_dir)
    suffix = uuid.uuid4().hex[:6]
    try:
        again = edgeml("twin", "up", "--dir", str(state_dir))  # a second twin on the same state: refused
        assert again.returncode == 1
        assert again.stderr.count("\n") == 1 and "already running" in again.stderr
        assert env["AWS_ENDPOINT_URL"] in again.stderr
        s3, iot, greengrass = (_client(name, env) for name in ("s3", "iot", "greengrassv2"))
        s3.create_bucket(Bucket=f"cli-{suffix}")
        s3.put_object(Bucket=f"cli-{suffix}", Key="a/hello.py", Body=b"print(1)\n")
        group_arn = iot.create_thing_group(thingGroupName=f"cli-fleet-{suffix}")["thingGroupArn"]
        iot.create_thing(thingName=f"cli-core-{suffix}")
        iot.add_thing_to_thing_group(thingGroupName=f"cli-fleet-{suffix}", thingName=f"cli-core-{suffix}")
        recipe = {
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": f"com.example.Cli{suffix}",
            "ComponentVersion": "1.0.0",
            "Manifests": [
                {
                    "Platform": {"os": "linux"},
                    "Lifecycle": {"Run": "true"},
                    "Artifacts": [{"Uri": f"s3://cli-{suffix}/a/hello.py"}],
                }
            ],
        }
        version = greengrass.create_component_version(inlineRecipe=json.dumps(recipe).encode())
        deployment = greengrass.create_deployment(
            targetArn=group_arn, components={f"com.example.Cli{suffix}": {"componentVersion": "1.0.0"}}
        )
    finally:
        stopped = edgeml("twin", "down", "--dir", str(state_dir))
    assert stopped.returncode == 0, stopped.stderr

    env = _up(state_dir)
    try:
        s3, iot, greengrass = (_client(name, env) for name in ("s3", "iot", "greengrassv2"))
        assert s3.get_object(Bucket=f"cli-{suffix}", Key="a/hello.py")["Body"].read() == b"print(1)\n"
        members = iot.list_things_in_thing_group(thingGroupName=f"cli-fleet-{suffix}")["things"]
        assert members == [f"cli-core-{suffix}"]
        assert greengrass.describe_component(arn=version["arn"])["componentVersion"] == "1.0.0"
        kept = greengrass.get_deployment(deploymentId=deployment["deploymentId"])
        assert kept["targetArn"] == group_arn
        status = edgeml("twin", "status", "--dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        assert env["AWS_ENDPOINT_URL"] in status.stdout
        assert f"cli-fleet-{suffix}" in status.stdout
        assert f"com.example.Cli{suffix}" in status.stdout
    finally:
        assert edgeml("twin", "down", "--dir", str(state_dir)).returncode == 0


def test_down_without_a_twin_is_a_one_line_error(tmp_path):
    result = edgeml("twin", "down", "--dir", str(tmp_path / "none"))
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1
    assert "no twin is running" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_that_is_not_a_twins_is_never_taken_over(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = edgeml("twin", "up", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "not a twin state directory" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


@pytest.mark.slow
def test_a_change_is_saved_within_seconds_even_if_the_twin_is_killed(tmp_path):
    state_dir = tmp_path / "twin"
    env = _up(state_dir)
    pid = int((state_dir / "twin.pid").read_text())
    _client("iot", env).create_thing(thingName="kept-after-kill")
    time.sleep(3)  # the saver writes a change once it is a second old
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not is_twin_process(pid), "the killed twin to be gone")
    env = _up(state_dir)  # the stale pid file is not trusted: up starts a new twin
    try:
        names = [thing["thingName"] for thing in _client("iot", env).list_things()["things"]]
        assert "kept-after-kill" in names
    finally:
        assert edgeml("twin", "down", "--dir", str(state_dir)).returncode == 0


def test_a_state_file_that_cannot_be_loaded_stops_up_with_one_line(tmp_path):
    (tmp_path / ".edgeml-twin").touch()
    (tmp_path / "moto-state.pickle").write_bytes(b"not a pickle")
    result = edgeml("twin", "up", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("error: the twin did not start:") and result.stderr.count("\n") == 1
    assert "moto-state.pickle: cannot be loaded" in result.stderr
    assert (tmp_path / "moto-state.pickle").read_bytes() == b"not a pickle"  # left as it was
