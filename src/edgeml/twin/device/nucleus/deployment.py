"""One deployment on the device: NUC deployment/DeploymentService.java, DefaultDeploymentTask.java,
DeploymentConfigMerger.java, activator/DefaultActivator.java, componentmanager/KernelConfigResolver.java.

stale check (REJECTED) -> capabilities -> roots of every group (the target's replaced) -> dependency
resolution -> download + digest check -> resolved services (configuration RESET/MERGE on root components
only, lifecycle interpolated) -> NOTIFY_COMPONENTS (PreComponentUpdateEvent, DeferComponentUpdate) ->
configuration validation -> snapshot (ROLLBACK) -> merge -> wait until added/changed services are
RUNNING or FINISHED (BROKEN after the merge fails it) -> obsolete services removed. Failures before the
merge are FAILED_NO_STATE_CHANGE; after it ROLLBACK restores the snapshot (FAILED_ROLLBACK_COMPLETE or
FAILED_UNABLE_TO_ROLLBACK), DO_NOTHING keeps what was applied (FAILED_ROLLBACK_NOT_REQUESTED, and the
group's roots are saved). Success means started, not healthy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeml.twin.device.nucleus import errors as codes
from edgeml.twin.device.nucleus.configtree import ConfigMergeError, Topics, resolve_configuration
from edgeml.twin.device.nucleus.errors import DeploymentError, NucleusTwinError
from edgeml.twin.device.nucleus.interpolation import Interpolator, ResolvedService
from edgeml.twin.device.nucleus.kernel import NUCLEUS, Kernel
from edgeml.twin.device.nucleus.recipe import Recipe, key
from edgeml.twin.device.nucleus.resolver import Resolver
from edgeml.twin.device.nucleus.service import ServiceSpec
from edgeml.twin.device.nucleus.store import ComponentStore
from edgeml.twin.device.nucleus.thinggroups import persisted_membership, still_counts

LOG = logging.getLogger(__name__)
SUPPORTED_CAPABILITIES = frozenset({"LARGE_CONFIGURATION"})
WAIT_POLL_S = 0.2  # DeploymentConfigMerger.waitForServicesToStart polls every 1 s; the twin a bit faster
BUILTIN_TYPES = ("aws.greengrass.generic", "aws.greengrass.nucleus")


@dataclass
class Document:
    """The device-side deployment document (NUC deployment/model/DeploymentDocument, FCS format)."""

    raw: dict[str, Any]

    @property
    def deployment_id(self) -> str:
        return str(self.raw["deploymentId"])

    @property
    def configuration_arn(self) -> str:
        return str(self.raw.get("configurationArn", ""))

    @property
    def group(self) -> str:
        """`thinggroup/<g>` or `thing/<t>`; a subdeployment counts as its parent group (onBehalfOf)."""
        parent = self.raw.get("onBehalfOf")
        if parent:
            return "thinggroup/" + str(parent).rsplit("thinggroup/", 1)[-1]
        resource = self.configuration_arn.split(":configuration:", 1)[-1]
        return resource.rsplit(":", 1)[0] if ":" in resource else resource

    @property
    def timestamp(self) -> int:
        return int(self.raw.get("creationTimestamp", 0))

    @property
    def components(self) -> dict[str, dict[str, Any]]:
        return {str(n): dict(v) for n, v in (self.raw.get("components") or {}).items()}

    @property
    def rollback(self) -> bool:
        return str(self.raw.get("failureHandlingPolicy", "ROLLBACK")).upper() == "ROLLBACK"

    @property
    def notify(self) -> tuple[bool, float]:
        policy = self.raw.get("componentUpdatePolicy") or {}
        return (
            str(policy.get("action", "NOTIFY_COMPONENTS")) == "NOTIFY_COMPONENTS",
            float(policy.get("timeout", 60)),
        )

    @property
    def validation_timeout_s(self) -> float:
        return float((self.raw.get("configurationValidationPolicy") or {}).get("timeout", 20))


@dataclass
class Outcome:
    status: str  # DeploymentResult.DeploymentStatus
    message: str = ""
    codes: list[str] = field(default_factory=list)
    owner: str | None = None

    @property
    def job_status(self) -> str:
        if self.status == codes.SUCCESSFUL:
            return "SUCCEEDED"
        return "REJECTED" if self.status == codes.REJECTED else "FAILED"

    def status_details(self) -> dict[str, str]:
        details = {"detailed-deployment-status": self.status}
        if self.status != codes.SUCCESSFUL:
            rejected = self.status == codes.REJECTED
            details["deployment-failure-cause"] = self.message[:1024]
            # Java's List.toString(), as the nucleus sends the lists (IotJobsHelper caps each at 1024)
            details["deployment-error-stack"] = _java_list(codes.error_stack(self.codes, rejected))[:1024]
            details["deployment-error-types"] = _java_list(codes.error_types(self.codes, self.owner))[:1024]
        return details


def _java_list(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


@dataclass
class DeviceState:
    """What the nucleus persists between deployments (DeploymentService's GroupToRootComponents,
    GroupToLastDeployment)."""

    group_roots: dict[str, dict[str, str]] = field(default_factory=dict)  # group -> {component: version}
    group_config_arns: dict[str, str] = field(default_factory=dict)
    group_timestamps: dict[str, int] = field(default_factory=dict)
    group_arns: dict[str, str] = field(default_factory=dict)  # group -> deploying ARN (for the stale message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_roots": self.group_roots,
            "group_config_arns": self.group_config_arns,
            "group_timestamps": self.group_timestamps,
            "group_arns": self.group_arns,
        }


class DeploymentInterrupted(Exception):
    """The device stopped mid-deployment: no rollback, no status ("Deployment interrupted: will not attempt
    rollback, regardless of policy", DefaultActivator); the job stays IN_PROGRESS until its timeout."""


class DeploymentTask:
    def __init__(
        self,
        kernel: Kernel,
        store: ComponentStore,
        resolver: Resolver,
        platform: Mapping[str, str],
        state: DeviceState,
        list_groups: Callable[[], set[str] | None] | None = None,
        download_document: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        """`list_groups`: the device's `thinggroup/<g>` names (ListThingGroupsForCoreDevice; None when it
        is denied); without it the twin uses the persisted membership, as the nucleus does on a 403.
        `download_document`: a LARGE_CONFIGURATION deployment's full document by its id
        (GetDeploymentConfiguration)."""
        self.list_groups = list_groups
        self.download_document = download_document
        self.member_of: set[str] = set()
        self.kernel = kernel
        self.store = store
        self.resolver = resolver
        self.base_platform = dict(platform)
        self.platform = dict(platform)
        self.state = state
        self.last_stage_times: dict[str, float] = {}
        self.interrupted = threading.Event()

    def stale(self, document: Document) -> Outcome | None:
        """DeploymentService.checkIfDeploymentReceivedIsStale."""
        last = self.state.group_timestamps.get(document.group)
        if last is not None and document.timestamp < last:
            previous = self.state.group_arns.get(document.group, "")
            return Outcome(
                codes.REJECTED,
                f"Nucleus has a newer deployment for '{document.group}' target deployed by '{previous}'. "
                f"Rejecting the deployment from '{document.configuration_arn}'",
                ["REJECTED_STALE_DEPLOYMENT"],
            )
        return None

    def run(self, document: Document) -> Outcome:
        stale = self.stale(document)
        if stale is not None:
            return stale
        # the nucleus describes its platform as os + architecture + its configuration's platformOverride keys
        override = self.kernel.nucleus_setting("platformOverride", {})
        self.platform = {
            **self.base_platform,
            **({str(k): str(v) for k, v in override.items()} if isinstance(override, dict) else {}),
        }
        self.resolver.platform = dict(self.platform)
        self.state.group_timestamps[document.group] = document.timestamp
        self.state.group_arns[document.group] = document.configuration_arn
        times: dict[str, float] = {}
        self.last_stage_times = times
        started = time.monotonic()
        try:
            missing = [
                c for c in document.raw.get("requiredCapabilities") or [] if c not in SUPPORTED_CAPABILITIES
            ]
            if missing:
                raise DeploymentError(
                    "The current nucleus version doesn't support one or more capabilities that are required "
                    "by "
                    f"this deployment: {', '.join(missing)}",
                    ["NUCLEUS_MISSING_REQUIRED_CAPABILITIES"],
                )
            # DefaultDeploymentTask.getNonTargetGroupToRootPackagesMap: groups the device left stop counting
            listed = self.list_groups() if self.list_groups is not None else None
            self.member_of = persisted_membership(set(self.state.group_roots)) if listed is None else listed
            roots = {
                g: dict(c)
                for g, c in self.state.group_roots.items()
                if still_counts(g, document.group, self.member_of)
            }
            target_roots = {name: str(spec["version"]) for name, spec in document.components.items()}
            roots[document.group] = target_roots
            recipes = self.resolver.resolve(roots)
            times["resolve"] = time.monotonic() - started
            if "LARGE_CONFIGURATION" in (document.raw.get("requiredCapabilities") or []):
                self._download_large_configuration(document)
            mark = time.monotonic()
            manifests = {}
            for name, recipe in recipes.items():
                self._check_runnable(recipe)
                manifests[name] = recipe.manifest_for(self.platform)
                self.store.save_recipe(recipe)
                self.store.prepare(recipe, manifests[name])
            times["download"] = time.monotonic() - mark
            specs, configs = self._resolve_services(document, recipes, manifests, set(target_roots))
        except DeploymentError as error:
            return Outcome(codes.FAILED_NO_STATE_CHANGE, error.message, error.codes, error.component_owner)
        except (NucleusTwinError, ConfigMergeError) as error:
            return Outcome(codes.FAILED_NO_STATE_CHANGE, str(error), ["TWIN_UNSUPPORTED"])
        rejection = self._notify_and_validate(document, specs, configs)
        if rejection is not None:
            return rejection
        mark = time.monotonic()
        outcome = self._activate(document, specs, configs, roots, recipes)
        times["install_start"] = time.monotonic() - mark
        self.store.remove_unused({n: s.spec.version for n, s in self.kernel.services.items()})
        return outcome

    def _download_large_configuration(self, document: Document) -> None:
        """DefaultDeploymentTask: after resolution, the full document's component configuration replaces the
        job document's (setDeploymentPackageConfigurationList)."""
        if self.download_document is None:
            raise DeploymentError(
                "Device not configured to talk to cloud, cannot download deployment document", []
            )
        full = self.download_document(document.deployment_id)
        document.raw["components"] = dict(full.get("components") or {})

    # -- checks and resolution ------------------------------------------------------------------
    def _check_runnable(self, recipe: Recipe) -> None:
        kind = recipe.component_type
        if recipe.name in self.kernel.builtins or kind in BUILTIN_TYPES:
            return
        raise NucleusTwinError(
            f"{recipe.name} is a {kind} component: the twin runs generic components and the builtin "
            f"{', '.join(sorted(self.kernel.builtins))} only"
        )

    def _resolve_services(
        self,
        document: Document,
        recipes: Mapping[str, Recipe],
        manifests: Mapping[str, Mapping[str, Any]],
        target_roots: set[str],
    ) -> tuple[dict[str, ServiceSpec], dict[str, Topics]]:
        configs: dict[str, Topics] = {}
        for name, recipe in recipes.items():
            update = (
                document.components.get(name, {}).get("configurationUpdate") if name in target_roots else None
            )
            configs[name] = resolve_configuration(
                self.kernel.configs.get(name),
                recipe.default_configuration(),
                list(update.get("reset") or []) if update else None,
                update.get("merge") if update else None,
                document.timestamp,
            )
        if NUCLEUS not in configs and NUCLEUS in self.kernel.configs:
            configs[NUCLEUS] = self.kernel.configs[NUCLEUS].copy()
        resolved = {n: ResolvedService(r.version, configs[n].to_dict()) for n, r in recipes.items()}
        interpolator = Interpolator(self.kernel.paths, self.kernel.thing_name, resolved)
        nucleus_config = configs[NUCLEUS].to_dict() if NUCLEUS in configs else {}
        interpolate_configuration = (
            str(key(nucleus_config, "interpolateComponentConfiguration")).lower() == "true"
        )
        specs: dict[str, ServiceSpec] = {}
        for name, recipe in recipes.items():
            dependencies = {d.name: d.hard for d in recipe.dependencies()}
            raw_lifecycle = recipe.lifecycle_for(manifests[name])
            if key(raw_lifecycle, "Bootstrap") is not None:
                raise NucleusTwinError(
                    f"{name} has a Bootstrap step: the twin cannot restart the nucleus or reboot the device "
                    "as a nucleus does around it"
                )
            lifecycle = interpolator.interpolate(raw_lifecycle, name, set(dependencies))
            if interpolate_configuration:
                interpolated = interpolator.interpolate(
                    configs[name].to_dict(), name, set(dependencies), configuration=False
                )
                configs[name] = Topics.from_dict(interpolated, document.timestamp)
            specs[name] = ServiceSpec(
                name, recipe.version, dict(lifecycle), dependencies, recipe.component_type, recipe.owner
            )
        if NUCLEUS not in specs and NUCLEUS in self.kernel.services:  # the nucleus component is sticky
            specs[NUCLEUS] = self.kernel.services[NUCLEUS].spec
        return specs, configs

    # -- NOTIFY_COMPONENTS and configuration validation ------------------------------------------
    def _notify_and_validate(
        self, document: Document, specs: Mapping[str, ServiceSpec], configs: Mapping[str, Topics]
    ) -> Outcome | None:
        notify, timeout_s = document.notify
        if notify:  # UpdateSystemPolicyService: re-announce after the longest recheckAfterMs
            versions = {n: s.version for n, s in specs.items()}
            while True:
                deferrals = self.kernel.ipc.announce_component_update(
                    document.deployment_id, versions, timeout_s
                )
                if not deferrals:
                    break
                if self.interrupted.wait(max(d.recheck_after_ms for d in deferrals) / 1000.0):
                    raise DeploymentInterrupted("interrupted while components deferred the update")
        # DynamicComponentConfigurationValidator: same version, changed configuration, subscribed components
        for name, spec in specs.items():
            running = self.kernel.services.get(name)
            if running is None or running.spec.version != spec.version:
                continue
            proposed = configs[name].to_dict()
            if self.kernel.configuration(name) == proposed:
                continue
            report = self.kernel.ipc.push_configuration_update(
                name, proposed, deployment_id=document.deployment_id, timeout_s=document.validation_timeout_s
            )
            if not report.accepted:
                return Outcome(
                    codes.FAILED_NO_STATE_CHANGE,
                    "Components reported that their to-be-deployed configuration is invalid "
                    f"{{ name = {name}, "
                    f"message = {report.message} }}",
                    ["COMPONENT_CONFIGURATION_NOT_VALID"],
                    spec.owner or None,
                )
        return None

    # -- activation (DefaultActivator) ----------------------------------------------------------
    def _activate(
        self,
        document: Document,
        specs: dict[str, ServiceSpec],
        configs: dict[str, Topics],
        roots: Mapping[str, Mapping[str, str]],
        recipes: Mapping[str, Recipe],
    ) -> Outcome:
        snapshot = self.kernel.snapshot() if document.rollback else None
        merge_time = time.time()
        already_broken = {n for n, s in self.kernel.services.items() if s.state == "BROKEN"}
        changed, _removed = self.kernel.apply(specs, configs)
        failure = self._wait_started(changed, merge_time, already_broken - changed)
        if failure is None:
            self._save_roots(document, roots)
            return Outcome(codes.SUCCESSFUL)
        name, owner = failure
        message = f"Service {name} in broken state after deployment"
        failed_codes = ["COMPONENT_UPDATE_ERROR", "COMPONENT_BROKEN"]
        if snapshot is None:
            self._save_roots(document, roots)
            return Outcome(codes.FAILED_ROLLBACK_NOT_REQUESTED, message, failed_codes, owner)
        self.kernel.apply(snapshot["specs"], snapshot["configs"])
        rolled_back = self._wait_started(set(snapshot["specs"]) - already_broken, time.time(), set())
        status = codes.FAILED_ROLLBACK_COMPLETE if rolled_back is None else codes.FAILED_UNABLE_TO_ROLLBACK
        return Outcome(status, message, failed_codes, owner)

    def _wait_started(
        self, names: set[str], merge_time: float, ignore: set[str]
    ) -> tuple[str, str | None] | None:
        """waitForServicesToStart: every tracked service RUNNING or FINISHED; a BROKEN one fails it."""
        while True:
            waiting = False
            for name in sorted(names - ignore):
                service = self.kernel.services.get(name)
                if service is None:
                    continue
                if service.state == "BROKEN" and service.last_state_change >= merge_time:
                    return name, service.spec.owner or None
                if not service.reached_desired() or service.state not in ("RUNNING", "FINISHED"):
                    waiting = True
            if not waiting:
                return None
            if self.interrupted.wait(WAIT_POLL_S):
                raise DeploymentInterrupted(f"interrupted while waiting for {', '.join(sorted(names))}")

    def _save_roots(self, document: Document, roots: Mapping[str, Mapping[str, str]]) -> None:
        # the groups left behind lose their saved roots with the deployment that dropped their components
        # (DeploymentService keeps GroupToRootComponents to the GroupMembership the task persisted)
        for group in [g for g in self.state.group_roots if g not in roots and g != document.group]:
            self.state.group_roots.pop(group)
        self.state.group_roots[document.group] = dict(roots[document.group])
        self.state.group_config_arns[document.group] = document.configuration_arn
        if not roots[document.group]:
            self.state.group_roots.pop(document.group)
