"""The running side of one device twin: its services, their configuration, and the IPC server fed from them.

NUC lifecyclemanager/Kernel.java + GreengrassService.java: a HARD dependency leaving RUNNING/FINISHED
restarts a dependent that is STARTING or RUNNING; SOFT never does. NUC GenericExternalService.java: a
change to a service's lifecycle restarts it, a change to its install step or version reinstalls it
(configuration changes are only announced over IPC).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgeml.twin.device.ipc import IpcServer
from edgeml.twin.device.nucleus.configtree import Topics
from edgeml.twin.device.nucleus.credentials import CredentialServer
from edgeml.twin.device.nucleus.environment import component_environment
from edgeml.twin.device.nucleus.paths import NucleusPaths
from edgeml.twin.device.nucleus.recipe import key
from edgeml.twin.device.nucleus.service import (
    READY,
    BuiltinService,
    GenericService,
    Service,
    ServiceHost,
    ServiceSpec,
)
from edgeml.twin.device.nucleus.steps import ComponentLog

LOG = logging.getLogger(__name__)
NUCLEUS = "aws.greengrass.Nucleus"


class Kernel(ServiceHost):
    def __init__(
        self,
        paths: NucleusPaths,
        thing_name: str,
        region: str,
        endpoint_url: str,
        nucleus_version: str,
        builtins: Mapping[str, tuple[Callable[[Service], None], Callable[[Service], None]]],
        on_state: Callable[[Service, str, str], None],
        system_path: str | None = None,
    ) -> None:
        self.system_path = system_path
        self.paths = paths
        self.thing_name = thing_name
        self.region = region
        self.endpoint_url = endpoint_url
        self.nucleus_version = nucleus_version
        self.builtins = dict(builtins)
        self._on_state = on_state
        self.services: dict[str, Service] = {}
        self.configs: dict[str, Topics] = {}
        self.lock = threading.RLock()
        self._logs: dict[str, ComponentLog] = {}
        self._logs_lock = threading.Lock()  # never the kernel lock: lifecycle threads log while apply() waits
        self.ipc = IpcServer(
            paths.root / "ipc.socket" if len(str(paths.root / "ipc.socket")) < 100 else None,
            iot_data_endpoint_url=endpoint_url,
        )
        self.credentials = CredentialServer(self.token_valid)
        self.root_ca = paths.root / "rootCA.pem"

    # -- start/stop -----------------------------------------------------------------------------
    def start(self) -> None:
        self.paths.make()
        if not self.root_ca.exists():
            self.root_ca.write_text(
                "# the twin has no TLS; a nucleus points GG_ROOT_CA_PATH at Amazon's root CA\n"
            )
        self.ipc.start()
        self.ipc.on_state_reported(self._reported_over_ipc)
        self.credentials.start()

    def stop(self) -> None:
        with self.lock:
            services = list(self.services.copy().values())
        # dependents first (reverse start order), as the nucleus shuts down
        for service in reversed(services):
            service.close()
        self.credentials.stop()
        self.ipc.stop()
        for log in self._logs.values():
            log.close()

    def token_valid(self, token: str) -> bool:
        try:
            return any(self.ipc.component_env(name)["SVCUID"] == token for name in self.services.copy())
        except Exception:
            return False

    # -- ServiceHost ----------------------------------------------------------------------------
    def environment(self, service: Service, setenv: Mapping[str, str]) -> dict[str, str]:
        ipc = self.ipc.component_env(service.name)
        return component_environment(
            thing_name=self.thing_name,
            region=self.region,
            svcuid=ipc["SVCUID"],
            socket_path=ipc["AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"],
            credentials_uri=self.credentials.uri,
            nucleus_version=self.nucleus_version,
            root_ca_path=str(self.root_ca),
            endpoint_url=self.endpoint_url,
            setenv=setenv,
            system_path=self.system_path,
        )

    def work_path(self, name: str) -> Path:
        return self.paths.work_path(name)

    def log(self, name: str) -> ComponentLog:
        with self._logs_lock:
            found = self._logs.get(name)
            if found is None:
                found = ComponentLog(self.paths.log_path(name), name)
                self._logs[name] = found
            return found

    def dependency_state(self, name: str) -> str | None:
        service = self.services.get(name)
        return service.state if service is not None else None

    def state_changed(self, service: Service, old: str, new: str) -> None:
        try:
            self.ipc.set_component_state(service.name, new)
        except Exception:
            LOG.debug("no IPC record for %s", service.name)
        if new not in READY:
            for dependent in list(self.services.copy().values()):
                if dependent is service or not dependent.spec.dependencies.get(service.name, False):
                    continue
                if dependent.state in ("STARTING", "RUNNING"):
                    dependent.request_restart()  # a HARD dependency left RUNNING/FINISHED
        self._on_state(service, old, new)

    def _reported_over_ipc(self, name: str, state: str) -> None:
        service = self.services.get(name)
        if service is not None:
            service.report(state, "NONE", f"reported {state} over IPC")

    # -- configuration --------------------------------------------------------------------------
    def configuration(self, name: str) -> dict[str, Any]:
        tree = self.configs.get(name)
        return tree.to_dict() if tree is not None else {}

    def nucleus_setting(self, name: str, default: Any) -> Any:
        value = key(self.configuration(NUCLEUS), name)
        return default if value is None else value

    # -- applying a new set of services (DeploymentConfigMerger / DefaultActivator) -------------
    def apply(
        self, specs: Mapping[str, ServiceSpec], configs: Mapping[str, Topics]
    ) -> tuple[set[str], set[str]]:
        """Makes `specs` the device's services; returns (added or changed, removed) names.

        New services start; a changed version or install step reinstalls; another lifecycle or dependency
        change restarts; a configuration-only change is announced over IPC; services not in `specs` stop
        and go (dependents first)."""
        with self.lock:
            changed: set[str] = set()
            removed = [name for name in self.services if name not in specs]
            for name in reversed(self._start_order(self.services)):
                if name in removed:
                    service = self.services.pop(name)
                    service.close()
                    self.configs.pop(name, None)
                    self.ipc.unregister_component(name)
            for name in self._start_order(specs):
                spec = specs[name]
                config = configs[name]
                spec.configuration = config.to_dict()
                existing = self.services.get(name)
                if existing is None:
                    self.configs[name] = config.copy()
                    self.ipc.register_component(name, spec.configuration, spec.version)
                    service = self._make(spec)
                    self.services[name] = service
                    service.start_thread()
                    service.request_start()
                    changed.add(name)
                    continue
                old = existing.spec
                self.configs[name] = config.copy()
                if old.version != spec.version:
                    self.ipc.register_component(name, spec.configuration, spec.version)
                elif self.ipc.configuration(name) != spec.configuration:  # not validated beforehand
                    self.ipc.push_configuration_update(name, spec.configuration, timeout_s=0.001)
                existing.spec = spec
                if old.version != spec.version or _step(old, "install") != _step(spec, "install"):
                    existing.request_reinstall()
                    changed.add(name)
                elif _without_shutdown(old.lifecycle) != _without_shutdown(spec.lifecycle) or (
                    old.dependencies != spec.dependencies
                ):
                    existing.request_restart()
                    changed.add(name)
                elif existing.state == "BROKEN":
                    existing.request_reinstall()  # reinstallBrokenServices
                    changed.add(name)
            return changed, set(removed)

    def _make(self, spec: ServiceSpec) -> Service:
        if spec.name in self.builtins:
            start, stop = self.builtins[spec.name]
            return BuiltinService(self, spec, start, stop)
        return GenericService(self, spec)

    @staticmethod
    def _start_order(specs: Mapping[str, Any]) -> list[str]:
        """Dependencies before dependents."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name not in specs:
                return
            seen.add(name)
            entry = specs[name]
            spec = entry.spec if isinstance(entry, Service) else entry
            for dependency in spec.dependencies:
                visit(dependency)
            order.append(name)

        for name in sorted(specs):
            visit(name)
        return order

    def snapshot(self) -> dict[str, Any]:
        """The running services and configuration (what a rollback restores)."""
        with self.lock:
            return {
                "specs": {n: copy.deepcopy(s.spec) for n, s in self.services.items()},
                "configs": {n: t.copy() for n, t in self.configs.items()},
            }

    def states(self) -> dict[str, str]:
        with self.lock:
            return {name: service.state for name, service in self.services.items()}


def _step(spec: ServiceSpec, name: str) -> str:
    return json.dumps(key(spec.lifecycle, name), sort_keys=True, default=str)


def _without_shutdown(lifecycle: Mapping[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in lifecycle.items() if str(k).lower() != "shutdown"}, sort_keys=True, default=str
    )
