"""One lifecycle step of a generic component: its script, timeout, Skipif, Setenv and RequiresPrivilege,
and the process that runs it (NUC lifecyclemanager/GenericExternalService.java, Lifecycle.java,
ShellRunner.java; DG component-recipe-reference).

A step runs as `sh -c <script>` in {work:path}, in its own process group, its stdout/stderr written to
logs/<component>.log as the nucleus's logger writes them.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from edgeml.twin.device.nucleus.recipe import key

# Lifecycle.java DEFAULT_*_TIMEOUT_IN_SEC; Run has none unless its Timeout is set.
DEFAULT_TIMEOUTS: dict[str, float | None] = {
    "bootstrap": 120,
    "install": 120,
    "startup": 120,
    "run": None,
    "shutdown": 15,
    "recover": 60,
}
SKIPIF = re.compile(r"(!?)(exists|onpath) +(.+)")  # GenericExternalService.shouldSkip
STOP_GRACE_S = 5.0


class SkipifNotValid(ValueError):
    """Skipif text the nucleus does not understand (the step fails with *_CONFIG_NOT_VALID)."""


@dataclass(frozen=True)
class Step:
    name: str  # install, startup, run, ...
    script: str | None
    timeout_s: float | None
    skipif: str | None = None
    setenv: dict[str, str] = field(default_factory=dict)
    requires_privilege: bool = False

    @classmethod
    def parse(cls, lifecycle: Mapping[str, Any], name: str) -> Step | None:
        value = key(lifecycle, name)
        if value is None:
            return None
        default = DEFAULT_TIMEOUTS.get(name.lower())
        if isinstance(value, str):
            return cls(name.lower(), value, default)
        if not isinstance(value, Mapping):
            return cls(name.lower(), str(value), default)
        timeout = key(value, "Timeout")
        setenv = key(value, "Setenv") or {}
        privilege = key(value, "RequiresPrivilege")
        return cls(
            name.lower(),
            None if key(value, "Script") is None else str(key(value, "Script")),
            float(timeout) if timeout is not None else default,
            None if key(value, "Skipif") is None else str(key(value, "Skipif")),
            {str(k): str(v) for k, v in setenv.items()},
            str(privilege).lower() == "true" if privilege is not None else False,
        )

    def should_skip(self, env: Mapping[str, str]) -> bool:
        if not self.skipif:
            return False
        match = SKIPIF.fullmatch(self.skipif.strip())
        if match is None:
            raise SkipifNotValid(f"Skipif '{self.skipif}' is not 'exists <path>' or 'onpath <command>'")
        negate, kind, target = match.group(1) == "!", match.group(2), match.group(3).strip()
        if kind == "onpath":
            found = shutil.which(target, path=env.get("PATH")) is not None
        else:
            found = Path(os.path.expanduser(target)).exists()
        return found != negate


class ComponentLog:
    """logs/<component>.log, written as the nucleus's logger writes a component's output."""

    def __init__(self, path: Path, component: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.component = component
        self._lock = threading.Lock()
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, level: str, event: str, message: str, **values: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        context = ", ".join(f"{k}={v}" for k, v in {**values, "serviceName": self.component}.items())
        with self._lock:
            if self._file.closed:
                return
            self._file.write(f"{stamp} [{level}] ({event}) {self.component}: {message}. {{{context}}}\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: the step gets SIGTERM if the twin goes away (a nucleus's components stop with it)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except OSError:
        return


class StepProcess:
    """A running step: `sh -c script`, output copied to the component log, stoppable by process group."""

    def __init__(
        self,
        step: Step,
        cwd: Path,
        env: Mapping[str, str],
        log: ComponentLog,
        state: Callable[[], str],
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.step = step
        script_name = f"services.{log.component}.lifecycle.{step.name.capitalize()}"
        self.process = subprocess.Popen(
            ["sh", "-c", step.script or ""],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            text=True,
            errors="replace",
        )
        self._readers = [
            threading.Thread(
                target=self._copy,
                args=(self.process.stdout, log, "INFO", "stdout", script_name, state),
                daemon=True,
            ),
            threading.Thread(
                target=self._copy,
                args=(self.process.stderr, log, "WARN", "stderr", script_name, state),
                daemon=True,
            ),
        ]
        for reader in self._readers:
            reader.start()
        self._on_exit = on_exit
        if on_exit is not None:
            threading.Thread(target=self._watch, daemon=True).start()

    @staticmethod
    def _copy(
        stream: IO[str] | None,
        log: ComponentLog,
        level: str,
        kind: str,
        script: str,
        state: Callable[[], str],
    ) -> None:
        if stream is None:
            return
        for line in stream:
            log.write(level, "Copier", f"{kind}. {line.rstrip()}", scriptName=script, currentState=state())

    def _watch(self) -> None:
        code = self.process.wait()
        for reader in self._readers:
            reader.join(2)
        if self._on_exit is not None:
            self._on_exit(code)

    def wait(self, timeout_s: float | None) -> int | None:
        """The exit code, or None if the step ran past `timeout_s` (it is then stopped)."""
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            return None
        for reader in self._readers:
            reader.join(2)
        return code

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM to the process group, SIGKILL after `grace_s` (what Exec.close() does)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return
            time.sleep(0.05)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.process.wait()
