"""A core device for the readiness tests: the IPC twin and the Stream Manager twin, the app's configuration
exactly as the recipe's DefaultConfiguration (no `{iot:thingName}` filled in: a stock nucleus has
interpolateComponentConfiguration false), aws.greengrass.StreamManager's configuration holding its port (as
on a device, where no component gets STREAM_MANAGER_SERVER_PORT in its environment), and the app either as a
process (`python -m edgeml_inference`) or in-process with the real SDK clients."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from stream_manager import NotEnoughMessagesException, ReadMessagesOptions, StreamManagerClient

from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.device.streammanager.server import StreamManagerServer

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "unit"))
from inference_kit import holdout, png, write_model_dir  # noqa: E402
from ipc_harness import connect as connect_ipc  # noqa: E402

__all__ = ["connect_ipc", "holdout", "png", "write_model_dir"]

COMPONENT = "com.edgeml.Inference"
STREAM_MANAGER = "aws.greengrass.StreamManager"
READER = "test.Reader"
THING = "edgeml-ready-core"
APP_DIR = REPO / "components" / COMPONENT


def recipe_defaults() -> dict[str, Any]:
    """The recipe's DefaultConfiguration as a stock nucleus stores it (placeholders left as text)."""
    recipe = yaml.safe_load((REPO / "recipes" / f"{COMPONENT}.yaml").read_text())
    defaults: dict[str, Any] = recipe["ComponentConfiguration"]["DefaultConfiguration"]
    return defaults


def wait_for(condition: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


class Rig:
    """One simulated core device. `root` should be short (Unix socket and store paths)."""

    def __init__(self, root: Path, stream_manager_port: int | None = None, **overrides: Any) -> None:
        self.root = root
        self.model_root = root / "models"
        write_model_dir(self.model_root / "1.0.0" / "linux-amd64", version="1.0.0")
        self.work = root / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.configuration = recipe_defaults()
        self.configuration.update(
            {
                "ModelDirectory": str(self.model_root),
                "InputDirectory": str(self.work / "input"),
                "CaptureDirectory": str(self.work / "capture"),  # an in-process app's cwd is not work/
                "HttpPort": 0,
                "HealthIntervalS": 3600,
                "ModelPollS": 0,
                "MaxWaitMs": 2,
                "StreamMaxBytes": 4 * 1024 * 1024,
                **overrides,
            }
        )
        self.ipc = IpcServer(forward_to_iot_core=False).start()
        self.streams = StreamManagerServer(root / "sm").start()
        port = self.streams.port if stream_manager_port is None else stream_manager_port
        # the component's own configuration as the nucleus holds it: a string, like its DefaultConfiguration
        self.ipc.register_component(STREAM_MANAGER, {"STREAM_MANAGER_SERVER_PORT": str(port)})
        self.ipc.register_component(COMPONENT, self.configuration)
        subscribe = {"operations": ["aws.greengrass#SubscribeToTopic"], "resources": ["*"]}
        reader = {"accessControl": {"aws.greengrass.ipc.pubsub": {"r": subscribe}}}
        self.ipc.register_component(READER, reader)
        self._readers: list[GreengrassCoreIPCClientV2] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "app.log"

    def app_env(self) -> dict[str, str]:
        """What a nucleus gives the component: IPC socket and SVCUID, the token, the thing name; no port."""
        env = {key: value for key, value in os.environ.items() if key != "STREAM_MANAGER_SERVER_PORT"}
        env.update(self.ipc.component_env(COMPONENT))
        env.update(
            {
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.streams.auth_token,
                "AWS_IOT_THING_NAME": THING,
                "PYTHONPATH": str(APP_DIR),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def spawn(self, **env: str) -> subprocess.Popen[bytes]:
        """Starts the app as the nucleus runs it (Setenv values in `env`); its log is appended to `log`."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edgeml_inference"],
                cwd=self.work,
                env={**self.app_env(), **env},
                stdout=log,
                stderr=log,
            )
        return self.process

    def read_stream(self, name: str, count: int, timeout_ms: int = 5000) -> list[bytes]:
        os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self.streams.auth_token  # the client reads it
        with StreamManagerClient(port=self.streams.port) as client:
            try:
                messages = client.read_messages(
                    name,
                    ReadMessagesOptions(
                        desired_start_sequence_number=0,
                        min_message_count=count,
                        max_message_count=max(count, 10_000),
                        read_timeout_millis=timeout_ms,
                    ),
                )
            except NotEnoughMessagesException:
                return []  # not yet: callers poll
        return [bytes(message.payload) for message in messages]

    def listen(self, topic: str) -> list[bytes]:
        """Messages published on the local `topic` from now on, as a subscriber component gets them."""
        received: list[bytes] = []
        reader = connect_ipc(self.ipc, READER)
        reader.subscribe_to_topic(
            topic=topic, on_stream_event=lambda event: received.append(bytes(event.binary_message.message))
        )
        self._readers.append(reader)
        return received

    def stop(self) -> None:
        for reader in self._readers:
            reader.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.streams.stop()
        self.ipc.stop()
