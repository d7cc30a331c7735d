"""What tests/integration/test_device_python.py and test_aarch64_userland.py share: a cached wheelhouse of
the Runtime's pinned requirements (the install itself is offline from it), the Runtime installer run for
real, and the inference app started from the venv it built, against the device twins.

The wheelhouse is a cached fixture outside the checkout (${XDG_CACHE_HOME:-~/.cache}/edgeml/wheelhouse):
the first run fills it with `pip download` (PyPI), every later run uses only the folder; the installer is
always run with --wheelhouse (pip --no-index), so the install under test never reaches an index.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.device.streammanager.server import StreamManagerServer
from edgeml.twin.loopback import WaitTimedOut, wait_for

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "components" / "com.edgeml.Runtime"
INFERENCE = REPO / "components" / "com.edgeml.Inference"
COMPONENT = "com.edgeml.Inference"
THING = "edgeml-device-python"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeml"
# 2 cores shared: ONNX Runtime's first session in an emulated guest takes a while.
APP_START_TIMEOUT_S = 240.0


def wheelhouse(requirements: Path, name: str, pip: Sequence[str], target: Sequence[str] = ()) -> Path:
    """CACHE/wheelhouse/<name>, filled once by `pip download` of `requirements` (binary wheels only).

    `pip` is the pip command to use (the target interpreter's own, so markers are evaluated for it), and
    `target` extra pip options (--platform/--python-version for another machine). Skips with the reason
    when the folder cannot be filled (no index reachable and nothing cached).
    """
    folder = CACHE / "wheelhouse" / name
    complete = folder / ".complete"
    if complete.is_file() and complete.read_text() == requirements.read_text():
        return folder
    partial = folder.with_name(f"{name}.partial-{uuid.uuid4().hex[:8]}")
    command = [*pip, "download", "-q", "--only-binary=:all:", "-d", str(partial), *target]
    completed = subprocess.run(
        [*command, "-r", str(requirements)], capture_output=True, text=True, timeout=900, check=False
    )
    if completed.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        tail = " | ".join(completed.stderr.strip().splitlines()[-2:])
        if "No matching distribution" in completed.stderr or "satisfies the requirement" in completed.stderr:
            # The index answered: a pin has no wheel for this Python/platform. That is the defect under test.
            pytest.fail(f"{requirements.name} pins something with no wheel for {name}: {tail}")
        pytest.skip(f"cannot fill the wheelhouse {folder} (no package index reachable?): {tail}")
    (partial / ".complete").write_text(requirements.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def app_configuration(model_dir: Path, input_dir: Path, port: int, kinesis: str = "") -> dict[str, Any]:
    """The recipe's DefaultConfiguration with this device's folders and a free loopback port."""
    recipe = yaml.safe_load((REPO / "recipes" / f"{COMPONENT}.yaml").read_text())
    # As a stock nucleus gives it: nothing interpolated (the app fills {iot:thingName} itself).
    configuration: dict[str, Any] = dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])
    configuration.update(
        {
            "ModelDirectory": str(model_dir),
            "InputDirectory": str(input_dir),
            "HttpPort": port,
            "ResultKinesisStream": kinesis,
            "ModelPollS": 0,
            "MaxWaitMs": 2,
            "HealthIntervalS": 60,
            "StreamMaxBytes": 8 * 1024 * 1024,
        }
    )
    return configuration


def post(port: int, body: bytes, timeout_s: float = 120.0) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("POST", "/v1/infer", body=body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def healthy(port: int, timeout_s: float = 2.0) -> bool:
    """The app at `port` answers GET /v1/health with 200."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
        connection.request("GET", "/v1/health")
        return connection.getresponse().status == 200
    except OSError:
        return False


class DeviceTwins:
    """The IPC twin (socket in `socket_dir`) and the Stream Manager twin of one simulated core device."""

    def __init__(self, root: Path, configuration: dict[str, Any]) -> None:
        self.configuration = configuration
        self.ipc = IpcServer(socket_path=root / "ipc.socket").start()
        self.ipc.register_component(COMPONENT, configuration)
        self.streams = StreamManagerServer(root / "streammanager").start()

    def app_env(self) -> dict[str, str]:
        return {
            **self.ipc.component_env(COMPONENT),
            **self.streams.client_env(),
            "AWS_IOT_THING_NAME": THING,
            "PYTHONUNBUFFERED": "1",
        }

    def stop(self) -> None:
        self.streams.stop()
        self.ipc.stop()


class App:
    """`python -m edgeml_inference` (or a command wrapping it) in its own process group."""

    def __init__(self, command: Sequence[str], env: dict[str, str], cwd: Path, log: Path, port: int) -> None:
        self.port = port
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                list(command), cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
            )

    def wait_healthy(self, timeout_s: float = APP_START_TIMEOUT_S) -> None:
        try:
            wait_for(
                lambda: healthy(self.port) or self.process.poll() is not None,
                "app healthy",
                timeout_s=timeout_s,
            )
        except WaitTimedOut as timed_out:
            log = self.log.read_text(errors="replace")[-4000:]
            raise AssertionError(f"{timed_out}; the app's log:\n{log}") from timed_out
        assert self.process.poll() is None, self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> int | None:
        """SIGTERM to the whole group (a PRoot guest ignores a SIGTERM to proot alone), then SIGKILL."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                return None
        return self.process.returncode


def scores(body: dict[str, Any]) -> dict[str, float]:
    """label -> score of one result's top_k."""
    return {str(entry["label"]): float(entry["score"]) for entry in body["top_k"]}


def host_python() -> str:
    return sys.executable
