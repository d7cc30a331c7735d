"""The rollout spec: a YAML file checked against schemas/rollout-spec.json, then what a schema cannot say.

Every refusal is one line naming the file and the key (`spec.yaml: rings[1].gate.maxErrorRate: ...`).
What needs AWS (components that exist, groups that exist, rings that overlap) is checked by `plan`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from edgeml.deploy.errors import SpecInvalid

DEFAULT_NAMESPACE = "EdgeML/Inference"  # infra/edgeml_infra/settings.py Settings.metric_namespace
DEFAULT_PERIOD_S = 60
DEFAULT_POLL_S = 5.0
DEFAULT_SETTLE_S = 3600.0


@dataclass(frozen=True)
class Gate:
    """A ring's health gate; None = not checked. Shares are 0..1 of the ring's devices."""

    min_succeeded: float = 1.0
    max_broken: float = 0.0
    max_unhealthy: float = 0.0
    max_error_rate: float | None = None
    max_latency_p99_ms: float | None = None
    min_mean_confidence: float | None = None
    max_drift_psi: float | None = None
    min_results_per_device: int | None = None
    max_failing_devices: float = 0.0  # share of devices allowed to fail each health-record check

    @property
    def reads_health_records(self) -> bool:
        return any(
            value is not None
            for value in (
                self.max_error_rate,
                self.max_latency_p99_ms,
                self.min_mean_confidence,
                self.max_drift_psi,
                self.min_results_per_device,
            )
        )


@dataclass(frozen=True)
class Ring:
    name: str
    thing_group: str | None  # an existing thing group used as the ring
    parent_group: str | None  # or a share of this group's members, by hash of the thing name
    share: float
    soak_s: float
    settle_timeout_s: float
    manual_promotion: bool
    job_configuration: dict[str, Any]
    gate: Gate

    @property
    def target_group(self) -> str:
        """The thing group the ring's deployment targets (made by the rollout for a share ring)."""
        if self.thing_group:
            return self.thing_group
        return f"{self.parent_group}-{self.name}"


@dataclass(frozen=True)
class ComponentTarget:
    name: str
    version: str
    merge: dict[str, Any] | None = None
    reset: tuple[str, ...] | None = None

    def deployment_entry(self) -> dict[str, Any]:
        """The CreateDeployment `components` value for this component."""
        entry: dict[str, Any] = {"componentVersion": self.version}
        update: dict[str, Any] = {}
        if self.merge is not None:
            update["merge"] = json.dumps(self.merge, sort_keys=True)
        if self.reset is not None:
            update["reset"] = list(self.reset)
        if update:
            entry["configurationUpdate"] = update
        return entry


@dataclass(frozen=True)
class RolloutSpec:
    name: str
    components: tuple[ComponentTarget, ...]
    rings: tuple[Ring, ...]
    deployment_policies: dict[str, Any]
    metric_namespace: str
    period_s: int
    poll_s: float
    digest: str  # sha256 of the normalised spec: a resumed rollout must be the same spec
    source: str = field(default="", compare=False)

    def deployment_components(self) -> dict[str, Any]:
        return {c.name: c.deployment_entry() for c in self.components}

    def ring(self, name: str) -> Ring:
        for ring in self.rings:
            if ring.name == name:
                return ring
        raise SpecInvalid(f"{self.source}: rings: no ring named {name!r}")


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("edgeml.deploy").joinpath("schemas", "rollout-spec.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def key_path(parts: list[str | int] | tuple[str | int, ...]) -> str:
    """`rings[1].gate.maxErrorRate` for ['rings', 1, 'gate', 'maxErrorRate']."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _decimals(value: float, places: int) -> bool:
    exponent = Decimal(str(value)).as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -places


def _check_schema(document: Any, source: str) -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        parts = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set((error.schema.get("properties") or {}).keys())
            extra = sorted(set(error.instance) - allowed)
            if extra:
                parts.append(extra[0])
                raise SpecInvalid(f"{source}: {key_path(parts)}: unknown key")
        if error.validator == "required" and isinstance(error.validator_value, list):
            missing = [k for k in error.validator_value if k not in (error.instance or {})]
            if missing:
                raise SpecInvalid(f"{source}: {key_path([*parts, missing[0]])}: required key is missing")
        if error.validator == "pattern" and parts and parts[-1] == "version":
            raise SpecInvalid(
                f"{source}: {key_path(parts)}: {error.instance!r} is not a semantic version (1.2.3)"
            )
        raise SpecInvalid(f"{source}: {key_path(parts)}: {error.message}")


def _check_rules(document: dict[str, Any], source: str) -> None:
    """What the schema cannot say: a ring's target, shares per parent, decimals, unique names."""
    seen: set[str] = set()
    share_per_parent: dict[str, float] = {}
    groups: dict[str, str] = {}
    for index, ring in enumerate(document["rings"]):
        where = f"{source}: rings[{index}]"
        if ring["name"] in seen:
            raise SpecInvalid(f"{where}.name: ring {ring['name']!r} is named twice")
        seen.add(ring["name"])
        has_group, has_parent, has_share = "thingGroup" in ring, "parentGroup" in ring, "share" in ring
        if has_group == (has_parent or has_share):
            raise SpecInvalid(f"{where}: give either thingGroup, or parentGroup and share")
        if has_parent != has_share:
            raise SpecInvalid(
                f"{where}.{'share' if has_parent else 'parentGroup'}: required with "
                f"{'parentGroup' if has_parent else 'share'}"
            )
        target = ring.get("thingGroup") or f"{ring['parentGroup']}-{ring['name']}"
        if target in groups:
            raise SpecInvalid(
                f"{where}: rings {groups[target]!r} and {ring['name']!r} overlap: both are "
                f"thing group {target}"
            )
        groups[target] = ring["name"]
        if has_parent:
            total = share_per_parent.get(ring["parentGroup"], 0.0) + float(ring["share"])
            if total > 1.0 + 1e-9:
                raise SpecInvalid(
                    f"{where}.share: rings of parentGroup {ring['parentGroup']} overlap: their "
                    f"shares add up to {total:g} (more than 1)"
                )
            share_per_parent[ring["parentGroup"]] = total
        job = ring.get("iotJobConfiguration") or {}
        exponential = (job.get("jobExecutionsRolloutConfig") or {}).get("exponentialRate")
        if exponential and not _decimals(exponential["incrementFactor"], 1):
            raise SpecInvalid(
                f"{where}.iotJobConfiguration.jobExecutionsRolloutConfig.exponentialRate."
                "incrementFactor: at most one digit after the decimal point"
            )
        for c_index, criteria in enumerate((job.get("abortConfig") or {}).get("criteriaList") or []):
            if not _decimals(criteria["thresholdPercentage"], 2):
                raise SpecInvalid(
                    f"{where}.iotJobConfiguration.abortConfig.criteriaList[{c_index}]."
                    "thresholdPercentage: at most two digits after the decimal point"
                )
    for parent in share_per_parent:
        if parent in groups:
            raise SpecInvalid(
                f"{source}: rings: thing group {parent} is a ring and the parent of share rings "
                "(its devices would be in two rings)"
            )


def _gate(raw: dict[str, Any]) -> Gate:
    return Gate(
        min_succeeded=float(raw.get("minSucceeded", 1.0)),
        max_broken=float(raw.get("maxBroken", 0.0)),
        max_unhealthy=float(raw.get("maxUnhealthy", 0.0)),
        max_error_rate=raw.get("maxErrorRate"),
        max_latency_p99_ms=raw.get("maxLatencyP99Ms"),
        min_mean_confidence=raw.get("minMeanConfidence"),
        max_drift_psi=raw.get("maxDriftPsi"),
        min_results_per_device=raw.get("minResultsPerDevice"),
        max_failing_devices=float(raw.get("maxFailingDevices", 0.0)),
    )


def parse_spec(document: Any, source: str) -> RolloutSpec:
    """The spec from its parsed YAML/JSON document; SpecInvalid naming the key on the first problem."""
    _check_schema(document, source)
    _check_rules(document, source)
    rings = tuple(
        Ring(
            name=r["name"],
            thing_group=r.get("thingGroup"),
            parent_group=r.get("parentGroup"),
            share=float(r.get("share", 1.0)),
            soak_s=float(r.get("soakSeconds", 600)),
            settle_timeout_s=float(r.get("settleTimeoutSeconds", DEFAULT_SETTLE_S)),
            manual_promotion=bool(r.get("manualPromotion", False)),
            job_configuration=dict(r.get("iotJobConfiguration") or {}),
            gate=_gate(r.get("gate") or {}),
        )
        for r in document["rings"]
    )
    components = tuple(
        ComponentTarget(
            name=name,
            version=c["version"],
            merge=(c.get("configurationUpdate") or {}).get("merge"),
            reset=tuple(c["configurationUpdate"]["reset"])
            if "reset" in (c.get("configurationUpdate") or {})
            else None,
        )
        for name, c in sorted(document["components"].items())
    )
    health = document.get("health") or {}
    normalised = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return RolloutSpec(
        name=document["name"],
        components=components,
        rings=rings,
        deployment_policies=dict(document.get("deploymentPolicies") or {}),
        metric_namespace=health.get("metricNamespace", DEFAULT_NAMESPACE),
        period_s=int(health.get("periodSeconds", DEFAULT_PERIOD_S)),
        poll_s=float(document.get("pollSeconds", DEFAULT_POLL_S)),
        digest=hashlib.sha256(normalised.encode()).hexdigest(),
        source=source,
    )


def load_spec(path: Path) -> RolloutSpec:
    """Reads and checks a spec file (YAML or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecInvalid(f"{path}: cannot read: {error.strerror or error}") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecInvalid(f"{path}: not valid YAML{where}") from error
    return parse_spec(document, str(path))
