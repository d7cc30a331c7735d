"""What the app is configured with (cdk.json context key `edgeml`, or a JSON file) and every physical name.

Names are derived here once, from the prefix, so stacks refer to each other's resources by ARN without
CloudFormation exports (any stack can be updated or deleted on its own) and the CLI reads them back from
the stack outputs (`edgeml config from-stack`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTEXT_KEY = "edgeml"
CONFIG_FILE_CONTEXT_KEY = "edgeml:configFile"

_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,19}$")
_RING = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9/_.#:-]{1,200}$")
_COMPONENT_PREFIX = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# The AWS regions' shape (partition-agnostic): us-east-1, eu-central-2, us-gov-west-1, cn-north-1.
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class SettingsError(ValueError):
    """A context or config-file value is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class HealthThresholds:
    """Fleet alarms on the health metrics (the rollout gate has its own, per ring, in the rollout spec)."""

    max_error_rate: float = 0.05
    max_latency_p99_ms: float = 500.0
    min_mean_confidence: float = 0.5
    max_class_psi: float = 0.25


@dataclass(frozen=True)
class Settings:
    """The app's configuration, validated."""

    prefix: str = "edgeml"
    region: str | None = None
    account: str | None = None
    rings: tuple[str, ...] = ("canary", "early", "fleet")
    component_prefixes: tuple[str, ...] = ("com.edgeml.",)
    metric_namespace: str = "EdgeML/Inference"
    capture_retention_days: int = 30
    results_retention_hours: int = 24
    log_retention_days: int = 30
    credential_duration_seconds: int = 3600
    thresholds: HealthThresholds = field(default_factory=HealthThresholds)
    # Optional ring deployment in CloudFormation: (rollout spec file, ring name).
    deployment: tuple[str, str] | None = None

    # names -------------------------------------------------------------------------------------

    @property
    def stack_prefix(self) -> str:
        return "".join(part.capitalize() for part in self.prefix.split("-"))

    def stack_name(self, part: str) -> str:
        return f"{self.stack_prefix}-{part}"

    def bucket_name(self, purpose: str, account: str, region: str) -> str:
        """Globally unique: purpose, account and region (63 characters at most for a 20-char prefix)."""
        return f"{self.prefix}-{purpose}-{account}-{region}"

    @property
    def parent_group(self) -> str:
        return f"{self.prefix}-fleet"

    def ring_group(self, ring: str) -> str:
        return f"{self.prefix}-ring-{ring}"

    @property
    def results_stream(self) -> str:
        return f"{self.prefix}-results"

    @property
    def role_alias(self) -> str:
        return f"{self.prefix}-token-exchange-role-alias"

    @property
    def core_policy(self) -> str:
        return f"{self.prefix}-core-device"

    @property
    def rule_prefix(self) -> str:
        """IoT rule names allow only [a-zA-Z0-9_]."""
        return self.prefix.replace("-", "_") + "_health"

    @property
    def rule_error_log_group(self) -> str:
        return f"/{self.prefix}/health-rule-errors"

    @property
    def neo_prefix(self) -> str:
        """Key prefix of Neo inputs and outputs (edgeml.model.compile.neo's default key_prefix)."""
        return "edgeml/neo"

    @property
    def capture_prefix(self) -> str:
        """Key prefix of captured inputs (the recipe's CaptureKeyPrefix default)."""
        return "captures"


def _get(raw: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = raw.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SettingsError(f"edgeml.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _positive(key: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise SettingsError(f"edgeml.{key}: {value} is outside {low}..{high}")
    return value


def parse(raw: dict[str, Any]) -> Settings:
    """Validates a settings mapping (camelCase keys, as in cdk.json); unknown keys are refused."""
    known = {
        "prefix",
        "region",
        "account",
        "rings",
        "componentPrefixes",
        "metricNamespace",
        "captureRetentionDays",
        "resultsRetentionHours",
        "logRetentionDays",
        "credentialDurationSeconds",
        "thresholds",
        "deployment",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"edgeml.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
    defaults = Settings()
    prefix = _get(raw, "prefix", str, defaults.prefix)
    if not _PREFIX.match(prefix):
        raise SettingsError(
            f"edgeml.prefix: {prefix!r} must be 2-20 of a-z, 0-9 and '-', starting with a letter"
        )
    region = raw.get("region")
    if region is not None and (not isinstance(region, str) or not _REGION.match(region)):
        raise SettingsError(f"edgeml.region: {region!r} is not an AWS region name")
    account = raw.get("account")
    if account is not None and (not isinstance(account, str) or not re.fullmatch(r"\d{12}", account)):
        raise SettingsError(f"edgeml.account: {account!r} is not a 12-digit account id")
    rings = _get(raw, "rings", list, list(defaults.rings))
    if not rings:
        raise SettingsError("edgeml.rings: at least one ring is needed")
    for ring in rings:
        if not isinstance(ring, str) or not _RING.match(ring):
            raise SettingsError(
                f"edgeml.rings: {ring!r} must be 1-32 of a-z, 0-9 and '-', starting with a letter"
            )
    if len(set(rings)) != len(rings):
        raise SettingsError("edgeml.rings: ring names repeat")
    prefixes = _get(raw, "componentPrefixes", list, list(defaults.component_prefixes))
    if not prefixes or not all(isinstance(p, str) and _COMPONENT_PREFIX.match(p) for p in prefixes):
        raise SettingsError(f"edgeml.componentPrefixes: {prefixes!r} must be component-name prefixes")
    namespace = _get(raw, "metricNamespace", str, defaults.metric_namespace)
    if not _NAMESPACE.match(namespace) or namespace.startswith("AWS/"):
        raise SettingsError(f"edgeml.metricNamespace: {namespace!r} is not a custom CloudWatch namespace")
    deployment = _deployment(raw.get("deployment"))
    thresholds_raw = _get(raw, "thresholds", dict, {})
    thresholds = _thresholds(thresholds_raw)
    return Settings(
        prefix=prefix,
        region=region,
        account=account,
        rings=tuple(rings),
        component_prefixes=tuple(prefixes),
        metric_namespace=namespace,
        capture_retention_days=_positive(
            "captureRetentionDays",
            _get(raw, "captureRetentionDays", int, defaults.capture_retention_days),
            1,
            3650,
        ),
        results_retention_hours=_positive(
            "resultsRetentionHours",
            _get(raw, "resultsRetentionHours", int, defaults.results_retention_hours),
            24,
            8760,
        ),
        log_retention_days=_retention(_get(raw, "logRetentionDays", int, defaults.log_retention_days)),
        credential_duration_seconds=_positive(
            "credentialDurationSeconds",
            _get(raw, "credentialDurationSeconds", int, defaults.credential_duration_seconds),
            900,
            43200,
        ),
        thresholds=thresholds,
        deployment=deployment,
    )


def _deployment(raw: Any) -> tuple[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"spec", "ring"}:
        raise SettingsError(
            'edgeml.deployment: expected {"spec": "<rollout spec file>", "ring": "<ring name>"}'
        )
    if not all(isinstance(raw[key], str) and raw[key] for key in ("spec", "ring")):
        raise SettingsError("edgeml.deployment: spec and ring must be non-empty strings")
    return raw["spec"], raw["ring"]


# CloudWatch Logs' RetentionInDays values (AWS::Logs::LogGroup).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        raise SettingsError(
            f"edgeml.logRetentionDays: {days} is not one of CloudWatch Logs' values {LOG_RETENTION_DAYS}"
        )
    return days


def _thresholds(raw: dict[str, Any]) -> HealthThresholds:
    keys = {
        "maxErrorRate": ("max_error_rate", 0.0, 1.0),
        "maxLatencyP99Ms": ("max_latency_p99_ms", 0.0, 3_600_000.0),
        "minMeanConfidence": ("min_mean_confidence", 0.0, 1.0),
        "maxClassPsi": ("max_class_psi", 0.0, 100.0),
    }
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise SettingsError(f"edgeml.thresholds.{unknown[0]}: unknown key (known: {', '.join(sorted(keys))})")
    values: dict[str, float] = {}
    defaults = HealthThresholds()
    for key, (attr, low, high) in keys.items():
        value = raw.get(key, getattr(defaults, attr))
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise SettingsError(f"edgeml.thresholds.{key}: {value!r} must be a number in {low:g}..{high:g}")
        values[attr] = float(value)
    return HealthThresholds(**values)


def from_context(context: Any, read_file: bool = True) -> Settings:
    """Settings from the CDK context: `edgeml` (an object), overlaid by `edgeml:configFile` (a JSON file)."""
    raw = context(CONTEXT_KEY) or {}
    if isinstance(raw, str):  # -c edgeml='{"prefix": ...}' arrives as a string
        raw = _json(raw, "-c edgeml")
    if not isinstance(raw, dict):
        raise SettingsError("edgeml: the context value must be an object")
    path = context(CONFIG_FILE_CONTEXT_KEY) if read_file else None
    if path:
        file = Path(str(path))
        try:
            overlay = _json(file.read_text(encoding="utf-8"), str(file))
        except OSError as error:
            raise SettingsError(f"{CONFIG_FILE_CONTEXT_KEY}: cannot read {file}: {error.strerror}") from None
        if not isinstance(overlay, dict):
            raise SettingsError(f"{CONFIG_FILE_CONTEXT_KEY}: {file} must hold a JSON object")
        raw = {**raw, **overlay}
    return parse(raw)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(f"{where}: not JSON ({error.msg} at line {error.lineno})") from None
