"""A running cloud twin as its state directory records it: pid file, endpoint record, env file.

`edgeml twin up` writes them once the endpoint listens; `down` removes them. A pid is only trusted when
that process is still an `edgeml twin` process (a stale pid file never makes us signal someone else's).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from edgeml.errors import EdgemlError
from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS

MARKER = ".edgeml-twin"
PID_FILE = "twin.pid"
ENDPOINT_FILE = "endpoint.json"
ENV_FILE = "twin.env"
LOG_FILE = "twin.log"
# The module the background process runs; its command line (or `edgeml twin up --foreground`'s) names
# both words, so a reused pid is not mistaken for the twin.
PROCESS_TAG = "edgeml.twin.cli"
_COMMAND_WORDS = (b"edgeml", b"twin")


@dataclass(frozen=True)
class RunningTwin:
    pid: int
    endpoint_url: str
    state_dir: Path

    @property
    def env_file(self) -> Path:
        return self.state_dir / ENV_FILE

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **TWIN_CREDENTIALS}


def claim_state_dir(state_dir: Path) -> None:
    """Creates the state directory, or accepts one this twin made before; refuses someone else's folder."""
    if state_dir.exists() and not state_dir.is_dir():
        raise EdgemlError(f"--dir {state_dir}: exists and is not a directory")
    if state_dir.is_dir() and any(state_dir.iterdir()) and not (state_dir / MARKER).exists():
        raise EdgemlError(f"--dir {state_dir}: not empty and not a twin state directory (no {MARKER} in it)")
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / MARKER).touch()


def is_twin_process(pid: int) -> bool:
    """True if `pid` is alive and its command line is this twin's background process."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): trust a live pid that we recorded
    return all(word in command for word in _COMMAND_WORDS)


def running_twin(state_dir: Path) -> RunningTwin | None:
    """The twin serving from `state_dir`, or None (no record, or its process is gone)."""
    try:
        record = json.loads((state_dir / ENDPOINT_FILE).read_text())
        pid = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not is_twin_process(pid) or record.get("pid") != pid:
        return None
    return RunningTwin(pid, str(record.get("url", "")), state_dir)


def record_running(state_dir: Path, endpoint_url: str, pid: int) -> RunningTwin:
    """Writes the env file, the endpoint record and, last, the pid file (what `up` waits for)."""
    twin = RunningTwin(pid, endpoint_url, state_dir)
    lines = [f"export {key}={shlex.quote(value)}" for key, value in twin.env().items()]
    twin.env_file.write_text(
        "# source this file: points boto3 and the AWS CLI at the local twin\n" + "\n".join(lines) + "\n"
    )
    (state_dir / ENDPOINT_FILE).write_text(json.dumps({"url": endpoint_url, "pid": pid}) + "\n")
    partial = state_dir / (PID_FILE + ".partial")
    partial.write_text(f"{pid}\n")
    partial.replace(state_dir / PID_FILE)
    return twin


def clear_running(state_dir: Path, pid: int) -> None:
    """Removes the records `record_running` wrote, if they are still this process's."""
    try:
        recorded = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return
    if recorded != pid:
        return
    for name in (PID_FILE, ENDPOINT_FILE, ENV_FILE):
        (state_dir / name).unlink(missing_ok=True)
