"""A component's lifecycle on the twin: states NEW..FINISHED, ERRORED restarted, BROKEN after 3 errors.

NUC lifecyclemanager/Lifecycle.java:
- MAXIMUM_CONTINUAL_ERROR = 3 ERRORED reports from the same state (NEW, STARTING or RUNNING) give BROKEN;
  a non-ERRORED report from that state clears its count, and so does a gap of `errorResetTime` seconds
  (lifecycle key, default 3600) since the previous error;
- on ERRORED the Recover step runs, then the service restarts (from NEW: reinstall; from STARTING or
  RUNNING: stop, then start again); BROKEN stays until a reinstall (a new deployment) or removal.
NUC lifecyclemanager/GenericExternalService.java: Install then (Startup | Run); Startup exit 0 ->
RUNNING, non-zero -> ERRORED; Run -> RUNNING as soon as the process starts, exit 0 -> FINISHED, non-zero
-> ERRORED; neither -> FINISHED; a step past its timeout -> ERRORED (*_TIMEOUT); Shutdown on stop.
NUC lifecyclemanager/GreengrassService.java: a service starts only when every HARD dependency is
RUNNING or FINISHED (SOFT ones are ready in any state).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeml.twin.device.nucleus.recipe import key
from edgeml.twin.device.nucleus.steps import ComponentLog, SkipifNotValid, Step, StepProcess

LOG = logging.getLogger(__name__)
MAXIMUM_CONTINUAL_ERROR = 3
DEFAULT_ERROR_RESET_TIME_S = 3600.0
STATES_TO_ERRORED = ("NEW", "STARTING", "RUNNING")
READY = ("RUNNING", "FINISHED")
ALLOWED_REPORTS = {  # Lifecycle.ALLOWED_STATE_TRANSITION_FOR_REPORTING
    "NEW": ("ERRORED",),
    "STARTING": ("RUNNING", "ERRORED", "FINISHED"),
    "RUNNING": ("ERRORED", "FINISHED"),
    "STOPPING": ("ERRORED", "FINISHED"),
}


@dataclass
class ServiceSpec:
    """What the kernel config holds for one service after a deployment (interpolated lifecycle)."""

    name: str
    version: str
    lifecycle: dict[str, Any]
    dependencies: dict[str, bool]  # name -> HARD
    component_type: str = "aws.greengrass.generic"
    owner: str = ""
    configuration: dict[str, Any] = field(default_factory=dict)


class ServiceHost:
    """What a service needs from its kernel (implemented by `kernel.Kernel`)."""

    def environment(self, service: Service, setenv: Mapping[str, str]) -> dict[str, str]:
        raise NotImplementedError

    def work_path(self, name: str) -> Path:
        raise NotImplementedError

    def log(self, name: str) -> ComponentLog:
        raise NotImplementedError

    def dependency_state(self, name: str) -> str | None:
        raise NotImplementedError

    def state_changed(self, service: Service, old: str, new: str) -> None:
        raise NotImplementedError


class Service:
    """Common state handling; `GenericService` runs recipe steps, builtins override `_start`/`_stop`."""

    def __init__(self, host: ServiceHost, spec: ServiceSpec) -> None:
        self.host = host
        self.spec = spec
        self.name = spec.name
        self.state = "NEW"
        self.status_codes = ["NONE"]
        self.status_reason = ""
        self._cond = threading.Condition()
        self._desired: list[str] = []  # Lifecycle.desiredStateList
        self._reported: list[tuple[str, str, str]] = []  # (state, code, reason) reports to process
        self._closed = False
        self._errors: dict[str, list[float]] = {}
        self._generation = 0
        self._thread: threading.Thread | None = None
        self.last_state_change = time.time()

    # -- requests (GreengrassService.requestStart/Stop/Restart/Reinstall) -----------------------
    def request_start(self) -> None:
        self._set_desired(["RUNNING"])

    def request_stop(self) -> None:
        self._set_desired(["FINISHED"])

    def request_restart(self) -> None:
        self._set_desired(["INSTALLED", "RUNNING"])

    def request_reinstall(self) -> None:
        self._set_desired(["NEW", "RUNNING"])

    def _set_desired(self, states: list[str]) -> None:
        with self._cond:
            self._desired = list(states)
            self._cond.notify_all()

    def report(self, state: str, code: str | None = None, reason: str | None = None) -> None:
        """A state reported by the service (its process exiting, or IPC UpdateState)."""
        allowed = {
            "NEW": ("ERRORED",),
            "STARTING": ("RUNNING", "ERRORED", "FINISHED"),
            "RUNNING": ("ERRORED", "FINISHED"),
            "STOPPING": ("ERRORED", "FINISHED"),
        }
        with self._cond:
            if state not in allowed.get(self.state, ()):
                LOG.warning(
                    "Invalid reported state {service=%s, newState=%s, state=%s}", self.name, state, self.state
                )
                return
            self._reported.append((state, code or "NONE", reason or ""))
            self._cond.notify_all()

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"lifecycle:{self.name}", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Stops the service and its lifecycle thread (removal or nucleus shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._interrupt()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _interrupt(self) -> None:
        """A foreground step (Install, Startup, ...) still running when the service is closed is stopped."""
        return None

    def reached_desired(self) -> bool:
        """Lifecycle.reachedDesiredState: nothing left on the desired path."""
        with self._cond:
            return not self._desired or all(state == self.state for state in self._desired)

    def wait_state(self, states: tuple[str, ...], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.state not in states:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- state ----------------------------------------------------------------------------------
    def _set_state(self, new: str, code: str = "NONE", reason: str = "") -> None:
        with self._cond:
            old = self.state
            if old == new:
                return
            self.state = new
            self.status_codes = [code]
            self.status_reason = reason
            self.last_state_change = time.time()
            self._cond.notify_all()
        self.host.log(self.name).write(
            "INFO", "lifecycle", f"service-set-state. {old} -> {new}", serviceState=new
        )
        self.host.state_changed(self, old, new)

    def _error_counts(self, origin: str, now: float) -> bool:
        """Lifecycle.internalReportState: counts an ERRORED from `origin`; True when that makes it BROKEN."""
        if origin not in STATES_TO_ERRORED:
            return False
        times = self._errors.setdefault(origin, [])
        reset_s = float(key(self.spec.lifecycle, "errorResetTime") or DEFAULT_ERROR_RESET_TIME_S)
        if times and now - times[-1] >= reset_s:
            times.clear()
        times.append(now)
        return len(times) >= MAXIMUM_CONTINUAL_ERROR

    def _clear_errors(self, origin: str) -> None:
        self._errors.pop(origin, None)

    def _dependencies_ready(self) -> bool:
        for name, hard in self.spec.dependencies.items():
            if hard and self.host.dependency_state(name) not in READY:
                return False
        return True

    def _take(self) -> tuple[str, str, str] | None:
        with self._cond:
            return self._reported.pop(0) if self._reported else None

    def _wait(self, timeout_s: float = 0.5) -> None:
        with self._cond:
            if not self._reported and not self._closed:
                self._cond.wait(timeout_s)

    def _desired_head(self) -> str | None:
        with self._cond:
            while self._desired and self._desired[0] == self.state:
                self._desired.pop(0)
            return self._desired[0] if self._desired else None

    def _pop_desired(self, state: str) -> None:
        with self._cond:
            if self._desired and self._desired[0] == state:
                self._desired.pop(0)

    # -- the lifecycle thread (Lifecycle.startStateTransition) ----------------------------------
    def _main(self) -> None:
        try:
            self._loop()
        except Exception:  # a twin bug: loud in the log, the service BROKEN rather than silently gone
            LOG.exception("lifecycle of %s failed", self.name)
            self._stop_processes()
            self._set_state("BROKEN", "NONE", "the twin's lifecycle thread failed")

    def _loop(self) -> None:
        previous = "NEW"
        while True:
            with self._cond:
                closed = self._closed
            current = self.state
            if closed:
                if current in ("RUNNING", "STARTING", "ERRORED", "STOPPING"):
                    self._stop_processes()
                    self._set_state("FINISHED")
                return
            desired = self._desired_head()
            reported = self._take()
            if reported is not None:
                state, code, reason = reported
                if state not in ALLOWED_REPORTS.get(current, ()):
                    continue  # Lifecycle.reportState: "Invalid reported state" (e.g. a late report)
                if state == "ERRORED":
                    broken = self._error_counts(current, time.monotonic())
                    previous = current
                    self._set_state("BROKEN" if broken else "ERRORED", code, reason)
                    if broken:
                        self._stop_processes()
                    continue
                self._clear_errors(current)
                if state == "FINISHED" and current == "STARTING":
                    self._pop_desired("RUNNING")
                self._set_state(state, code, reason)
                continue
            if current == "BROKEN":
                if desired == "NEW":
                    self._errors.clear()
                    self._set_state("NEW")
                else:
                    self._wait()
            elif current == "NEW":
                if desired in (None, "FINISHED"):
                    self._wait()
                else:
                    self._pop_desired("NEW")
                    self._install()
            elif current == "INSTALLED":
                if desired == "RUNNING" and self._dependencies_ready():
                    self._set_state("STARTING")
                    self._start()
                elif desired == "NEW":
                    self._set_state("NEW")
                else:
                    self._pop_desired("INSTALLED")
                    self._wait()
            elif current in ("RUNNING", "STARTING"):
                if desired in ("FINISHED", "INSTALLED", "NEW"):
                    self._set_state("STOPPING")
                    self._stop_processes()
                    target = {"FINISHED": "FINISHED", "INSTALLED": "INSTALLED", "NEW": "NEW"}[desired]
                    self._pop_desired(target)
                    self._set_state(target)
                else:
                    self._wait()
            elif current == "FINISHED":
                if desired in ("RUNNING", "INSTALLED"):
                    self._pop_desired("INSTALLED")
                    self._set_state("INSTALLED")
                elif desired == "NEW":
                    self._set_state("NEW")
                else:
                    self._wait()
            elif current == "ERRORED":
                self._recover()
                self._stop_processes()
                with self._cond:
                    if not self._desired:
                        self._desired = ["RUNNING"]
                self._set_state("NEW" if previous == "NEW" else "INSTALLED")

    # -- overridable work -----------------------------------------------------------------------
    def _install(self) -> None:
        self._set_state("INSTALLED")

    def _start(self) -> None:
        self.report("RUNNING")

    def _stop_processes(self) -> None:
        return None

    def _recover(self) -> None:
        return None


class GenericService(Service):
    """A component run from its recipe's lifecycle steps."""

    def __init__(self, host: ServiceHost, spec: ServiceSpec) -> None:
        super().__init__(host, spec)
        self._process: StepProcess | None = None
        self._shutdown: Step | None = None
        self._foreground: StepProcess | None = None

    def _interrupt(self) -> None:
        foreground = self._foreground
        if foreground is not None:
            foreground.stop()

    def _step(self, name: str) -> Step | None:
        return Step.parse(self.spec.lifecycle, name)

    def _environment(self, step: Step) -> dict[str, str]:
        setenv = {str(k): str(v) for k, v in (key(self.spec.lifecycle, "Setenv") or {}).items()}
        return self.host.environment(self, {**setenv, **step.setenv})

    def _run_step(self, step: Step, failure: str) -> tuple[bool, str, str]:
        """Runs a foreground step to completion: (ok, status code, reason)."""
        log = self.host.log(self.name)
        env = self._environment(step)
        prefix = step.name.upper()
        try:
            if step.should_skip(env):
                log.write("INFO", "lifecycle", f"Skipping {step.name}: Skipif '{step.skipif}' holds")
                return True, "NONE", ""
        except SkipifNotValid as error:
            log.write("ERROR", "lifecycle", str(error))
            return False, f"{prefix}_CONFIG_NOT_VALID", str(error)
        if step.requires_privilege and os.geteuid() != 0:
            reason = (
                f"the twin cannot honour RequiresPrivilege: true for {step.name}: it runs as uid "
                f"{os.geteuid()}, a nucleus would run the step as root"
            )
            log.write("ERROR", "lifecycle", reason)
            return False, failure, reason
        if not step.script:
            return True, "NONE", ""
        process = StepProcess(step, self.host.work_path(self.name), env, log, lambda: self.state)
        self._foreground = process
        try:
            code = process.wait(step.timeout_s)
        finally:
            self._foreground = None
        if code is None:
            return False, f"{prefix}_TIMEOUT", f"The {step.name} script timed out."
        if code != 0:
            return False, failure, f"The {step.name} script exited with code {code}."
        return True, "NONE", ""

    def _install(self) -> None:
        step = self._step("Install")
        ok, code, reason = (True, "NONE", "") if step is None else self._run_step(step, "INSTALL_ERROR")
        if ok:
            self._set_state("INSTALLED")
        else:
            self.report("ERRORED", code, reason)

    def _start(self) -> None:
        self._shutdown = self._step("Shutdown")  # cached at startup, as the nucleus does
        startup, run = self._step("Startup"), self._step("Run")
        if startup is not None:
            ok, code, reason = self._run_step(startup, "STARTUP_ERROR")
            self.report("RUNNING" if ok else "ERRORED", code, reason)
            return
        if run is None:
            self.report("FINISHED")  # "Nothing done"
            return
        env = self._environment(run)
        try:
            if run.should_skip(env):
                self.report("FINISHED")
                return
        except SkipifNotValid as error:
            self.report("ERRORED", "RUN_CONFIG_NOT_VALID", str(error))
            return
        if run.requires_privilege and os.geteuid() != 0:
            reason = (
                f"the twin cannot honour RequiresPrivilege: true for run: it runs as uid {os.geteuid()}, "
                "a nucleus would run the step as root"
            )
            self.host.log(self.name).write("ERROR", "lifecycle", reason)
            self.report("ERRORED", "RUN_ERROR", reason)
            return
        if not run.script:
            self.report("FINISHED")
            return
        self._generation += 1
        generation = self._generation

        def exited(code: int) -> None:
            if generation != self._generation:
                return  # a stop we asked for
            if code == 0:
                self.report("FINISHED")
            else:
                self.report("ERRORED", "RUN_ERROR", f"The run script exited with code {code}.")

        self.report("RUNNING")  # as soon as the process starts (reported first: its exit comes after)
        self._process = StepProcess(
            run,
            self.host.work_path(self.name),
            env,
            self.host.log(self.name),
            lambda: self.state,
            on_exit=exited,
        )
        if run.timeout_s is not None:

            def expire() -> None:
                if generation == self._generation and self._process is not None and self._process.running():
                    self._generation += 1
                    self._process.stop()
                    self.report("ERRORED", "RUN_TIMEOUT", "The run script timed out.")

            timer = threading.Timer(run.timeout_s, expire)
            timer.daemon = True
            timer.start()

    def _stop_processes(self) -> None:
        self._generation += 1
        shutdown = self._shutdown or self._step("Shutdown")
        if shutdown is not None and shutdown.script:
            self._run_step(shutdown, "SHUTDOWN_ERROR")
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _recover(self) -> None:
        step = self._step("Recover")
        if step is not None:
            self._run_step(step, "NONE")


class BuiltinService(Service):
    """A service the twin provides itself (aws.greengrass.Nucleus, TokenExchangeService, StreamManager)."""

    def __init__(
        self,
        host: ServiceHost,
        spec: ServiceSpec,
        start: Callable[[Service], None] | None = None,
        stop: Callable[[Service], None] | None = None,
    ) -> None:
        super().__init__(host, spec)
        self._on_start = start
        self._on_stop = stop

    def _start(self) -> None:
        if self._on_start is not None:
            try:
                self._on_start(self)
            except Exception as error:
                self.report("ERRORED", "STARTUP_ERROR", f"{type(error).__name__}: {error}")
                return
        self.report("RUNNING")

    def _stop_processes(self) -> None:
        if self._on_stop is not None:
            self._on_stop(self)
