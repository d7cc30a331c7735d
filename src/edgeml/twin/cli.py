"""`edgeml twin up|down|status|env`: the local cloud twin as a background process, its state in a folder."""

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
) -> None:
    """Start the twin on 127.0.0.1 (in the background unless --foreground) and print its endpoint."""
    existing = running_twin(state_dir)
    if existing is not None:
        raise EdgemlError(
            f"a twin is already running from {state_dir} at {existing.endpoint_url} (pid {existing.pid})"
        )
    claim_state_dir(state_dir)
    if foreground:
        _serve(state_dir, port)
        return
    twin = _start_background(state_dir, port)
    print(f"twin up at {twin.endpoint_url} (pid {twin.pid}, state in {state_dir})")
    print(f"environment: source {twin.env_file.resolve()}")


def _serve(state_dir: Path, port: int) -> None:
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
    twin = record_running(state_dir, endpoint.endpoint_url, os.getpid())
    print(
        f"twin serving at {twin.endpoint_url} (state in {state_dir}); Ctrl-C or `edgeml twin down` stops it",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        try:
            endpoint.stop()
        except Exception as error:  # the twin's own files: say which, keep the traceback out
            raise EdgemlError(f"saving the twin's state in {state_dir} failed: {error}") from None
        finally:
            clear_running(state_dir, os.getpid())  # after the save: the next `up` loads all of it


def _start_background(state_dir: Path, port: int) -> RunningTwin:
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
    ]
    with (state_dir / LOG_FILE).open("ab") as log:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        twin = running_twin(state_dir)
        if twin is not None and twin.pid == child.pid:
            return twin
        if child.poll() is not None:
            raise EdgemlError(f"the twin did not start: {_last_error(state_dir)}")
        time.sleep(0.1)
    child.terminate()
    raise EdgemlError(f"the twin did not start within {START_TIMEOUT_S:g} s (log: {state_dir / LOG_FILE})")


def _last_error(state_dir: Path) -> str:
    try:
        lines = [line for line in (state_dir / LOG_FILE).read_text().splitlines() if line.strip()]
    except OSError:
        lines = []
    return (lines[-1].removeprefix("error: ") if lines else "no output") + f" (log: {state_dir / LOG_FILE})"


@app.command()
def down(state_dir: StateDir = DEFAULT_DIR) -> None:
    """Stop the twin (its state is saved in --dir and loaded by the next `up`)."""
    twin = _require_running(state_dir)
    import os

    os.kill(twin.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while is_twin_process(twin.pid):
        if time.monotonic() > deadline:
            raise EdgemlError(f"the twin (pid {twin.pid}) did not stop within {STOP_TIMEOUT_S:g} s")
        time.sleep(0.1)
    print(f"twin down (state kept in {state_dir})")


@app.command()
def env(state_dir: StateDir = DEFAULT_DIR) -> None:
    """Print the path of an env file to `source` (AWS_ENDPOINT_URL, throwaway credentials, region)."""
    print(_require_running(state_dir).env_file.resolve())


@app.command()
def status(state_dir: StateDir = DEFAULT_DIR) -> None:
    """Print the endpoint and what the twin holds: things, thing groups, components, deployments."""
    from edgeml.twin.cloud.summary import summarize

    twin = _require_running(state_dir)
    print(f"endpoint: {twin.endpoint_url} (pid {twin.pid}, state in {state_dir})")
    for line in summarize(twin.env()):
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
