"""`edgeml twin up|down|status|env`: the local cloud twin as a background process, its state in a folder;
with `--devices N`, N device twins (simulated nuclei, `<state dir>/devices/`) served beside it."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeml.errors import EdgemlError
from edgeml.twin import devicerecord
from edgeml.twin.cloud.instance import (
    LOG_FILE,
    PROCESS_TAG,
    RunningTwin,
    claim_state_dir,
    clear_running,
    is_twin_process,
    record_running,
    running_twin,
)
from edgeml.twin.device import cli as device_cli

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="The local cloud twin: one loopback AWS endpoint (moto + a GreengrassV2 control plane).",
)

device_cli.register(app)  # `edgeml twin device logs|status` (src/edgeml/twin/device/cli.py)

DEFAULT_DIR = Path(".edgeml/twin")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
DEVICE_START_S = 5.0  # added to START_TIMEOUT_S per device: its boto3 clients, its thing and groups
DEVICE_STOP_S = 20.0  # added to STOP_TIMEOUT_S per device: its components' Shutdown (15 s default)

StateDir = Annotated[
    Path,
    typer.Option("--dir", envvar="EDGEML_TWIN_DIR", help="State directory of the twin (survives down/up)."),
]


def register(parent: typer.Typer) -> None:
    parent.add_typer(
        app, name="twin", help="Run the local cloud twin (GreengrassV2, IoT, S3, ... on loopback)."
    )


@app.command()
def up(
    state_dir: StateDir = DEFAULT_DIR,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port (0: a free one).")] = 0,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Serve in this process until Ctrl-C.")
    ] = False,
    devices: Annotated[
        int, typer.Option("--devices", min=0, help="Device twins (simulated nuclei) to serve beside it.")
    ] = 0,
    groups: Annotated[
        list[str] | None,
        typer.Option("--groups", help="Thing groups of every device (comma-separated, repeatable)."),
    ] = None,
) -> None:
    """Start the twin on 127.0.0.1 (in the background unless --foreground) and print its endpoint."""
    try:
        group_names = devicerecord.parse_groups(groups or [])
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--groups") from None
    if group_names and not devices:
        raise typer.BadParameter("thing groups are for device twins: add --devices N", param_hint="--groups")
    existing = running_twin(state_dir)
    if existing is not None:
        raise EdgemlError(
            f"a twin is already running from {state_dir} at {existing.endpoint_url} (pid {existing.pid})"
        )
    claim_state_dir(state_dir)
    if devices:
        devicerecord.require_fresh(state_dir)
    if foreground:
        _serve(state_dir, port, devices, group_names)
        return
    twin = _start_background(state_dir, port, devices, group_names)
    print(f"twin up at {twin.endpoint_url} (pid {twin.pid}, state in {state_dir})")
    if devices:
        print(f"{devices} device twins under {devicerecord.devices_root(state_dir)}")
    print(f"environment: source {twin.env_file.resolve()}")


def _serve(state_dir: Path, port: int, devices: int = 0, groups: list[str] | None = None) -> None:
    import os

    from edgeml.twin.cloud.endpoint import CloudEndpoint
    from edgeml.twin.cloud.persistence import StateUnreadable

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    endpoint = CloudEndpoint(state_dir.resolve(), port=port)
    try:
        endpoint.start()
    except StateUnreadable as error:
        raise EdgemlError(str(error)) from None
    except OSError as error:
        raise EdgemlError(f"cannot listen: {error.strerror or error}") from None
    fleet: _DeviceThread | None = None
    try:
        if devices:
            fleet = _DeviceThread(endpoint.endpoint_url, state_dir, devices, groups or [], stop)
            things = fleet.wait_started(START_TIMEOUT_S + DEVICE_START_S * devices)
            devicerecord.write_record(state_dir, things, groups or [])
            print(f"{devices} device twins serving under {devicerecord.devices_root(state_dir)}", flush=True)
        twin = record_running(state_dir, endpoint.endpoint_url, os.getpid())
        print(
            f"twin serving at {twin.endpoint_url} (state in {state_dir}); "
            "Ctrl-C or `edgeml twin down` stops it",
            flush=True,
        )
        stop.wait()
    finally:
        try:
            if fleet is not None:  # the devices first: their components reach the cloud to the end
                fleet.stop(DEVICE_STOP_S * devices)
                devicerecord.clear_record(state_dir)
            endpoint.stop()
        except Exception as error:  # the twin's own files: say which, keep the traceback out
            raise EdgemlError(f"saving the twin's state in {state_dir} failed: {error}") from None
        finally:
            clear_running(state_dir, os.getpid())  # after the save: the next `up` loads all of it


class _DeviceThread:
    """`fleet.serve_devices` on a thread of its own until `stop` is set; its failure stops the twin."""

    def __init__(self, endpoint_url: str, state_dir: Path, count: int, groups: list[str],
                 stop: threading.Event) -> None:
        self.state_dir = state_dir
        self.count = count
        self.stop_event = stop
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._run,
            args=(endpoint_url, devicerecord.devices_root(state_dir.resolve()), count, groups),
            name="device-twins",
        )
        self.thread.start()

    def _run(self, endpoint_url: str, root: Path, count: int, groups: list[str]) -> None:
        from edgeml.twin.device.nucleus.fleet import serve_devices

        try:
            serve_devices(endpoint_url, root, count, groups, self.stop_event)
        except BaseException as error:  # reported by the main thread, as one line
            self.error = error
            self.stop_event.set()

    def wait_started(self, timeout_s: float) -> list[str]:
        """The things of the devices once every one has started; EdgemlError if they cannot."""
        deadline = time.monotonic() + timeout_s
        while True:
            started = devicerecord.started_roots(self.state_dir)
            if len(started) >= self.count:
                return [root.name for root in started]
            if self.error is not None or not self.thread.is_alive():
                raise EdgemlError(f"the device twins did not start: {self._reason()}")
            if self.stop_event.is_set():
                raise EdgemlError("stopped while the device twins were starting")
            if time.monotonic() > deadline:
                raise EdgemlError(f"{len(started)} of {self.count} device twins started in {timeout_s:g} s")
            time.sleep(0.1)

    def stop(self, timeout_s: float) -> None:
        self.stop_event.set()
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            raise EdgemlError(f"the device twins did not stop within {timeout_s:g} s")
        if self.error is not None:
            raise EdgemlError(f"the device twins failed: {self._reason()}")

    def _reason(self) -> str:
        return " ".join(str(self.error).split()) or type(self.error).__name__


def _start_background(state_dir: Path, port: int, devices: int, groups: list[str]) -> RunningTwin:
    command = [
        sys.executable,
        "-m",
        PROCESS_TAG,
        "up",
        "--foreground",
        "--dir",
        str(state_dir),
        "--port",
        str(port),
        "--devices",
        str(devices),
        *(["--groups", ",".join(groups)] if groups else []),
    ]
    with (state_dir / LOG_FILE).open("ab") as log:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    timeout_s = START_TIMEOUT_S + DEVICE_START_S * devices
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        twin = running_twin(state_dir)
        if twin is not None and twin.pid == child.pid:
            return twin
        if child.poll() is not None:
            raise EdgemlError(f"the twin did not start: {_last_error(state_dir)}")
        time.sleep(0.1)
    child.terminate()
    raise EdgemlError(f"the twin did not start within {timeout_s:g} s (log: {state_dir / LOG_FILE})")


def _last_error(state_dir: Path) -> str:
    try:
        lines = [line for line in (state_dir / LOG_FILE).read_text().splitlines() if line.strip()]
    except OSError:
        lines = []
    return (lines[-1].removeprefix("error: ") if lines else "no output") + f" (log: {state_dir / LOG_FILE})"


@app.command()
def down(state_dir: StateDir = DEFAULT_DIR) -> None:
    """Stop the twin and its device twins (its state is saved in --dir and loaded by the next `up`)."""
    twin = _require_running(state_dir)
    import os

    timeout_s = STOP_TIMEOUT_S + DEVICE_STOP_S * len(devicerecord.recorded_things(state_dir))
    os.kill(twin.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_twin_process(twin.pid):
        if time.monotonic() > deadline:
            raise EdgemlError(f"the twin (pid {twin.pid}) did not stop within {timeout_s:g} s")
        time.sleep(0.1)
    print(f"twin down (state kept in {state_dir})")


@app.command()
def env(state_dir: StateDir = DEFAULT_DIR) -> None:
    """Print the path of an env file to `source` (AWS_ENDPOINT_URL, throwaway credentials, region)."""
    print(_require_running(state_dir).env_file.resolve())


@app.command()
def status(state_dir: StateDir = DEFAULT_DIR) -> None:
    """Print the endpoint, what the twin holds (things, thing groups, components, deployments) and the
    device twins it serves, with their components' states."""
    from edgeml.twin.cloud.summary import summarize

    twin = _require_running(state_dir)
    print(f"endpoint: {twin.endpoint_url} (pid {twin.pid}, state in {state_dir})")
    for line in summarize(twin.env()):
        print(line)
    for line in devicerecord.status_lines(state_dir):
        print(line)


def _require_running(state_dir: Path) -> RunningTwin:
    twin = running_twin(state_dir)
    if twin is None:
        raise EdgemlError(
            f"no twin is running from {state_dir} (start one with `edgeml twin up --dir {state_dir}`)"
        )
    return twin


def main() -> None:
    """`python -m edgeml.twin.cli`: what the background process runs (errors as one line, exit 1)."""
    try:
        app(standalone_mode=False)
    except EdgemlError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
