"""The CLI's configuration file: what `edgeml config from-stack` wrote (JSON, one account and region).

Location: --config, else $EDGEML_CONFIG, else $XDG_CONFIG_HOME/edgeml/config.json (~/.config/...).
A file that lacks our format marker is never overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edgeml.config.errors import ConfigError

FORMAT = "edgeml.config/1"


@dataclass
class AccountConfig:
    """Names and ARNs of one deployment of the CDK app (fields match edgeml.config.outputs)."""

    region: str
    account: str
    stacks: list[str] = field(default_factory=list)
    artifacts_bucket: str | None = None
    access_log_bucket: str | None = None
    neo_key_prefix: str | None = None
    parent_thing_group: str | None = None
    ring_thing_groups: dict[str, str] | None = None
    core_device_policy: str | None = None
    token_exchange_role_arn: str | None = None
    token_exchange_role_alias: str | None = None
    results_stream: str | None = None
    capture_bucket: str | None = None
    capture_key_prefix: str | None = None
    metric_namespace: str | None = None
    health_alarms: dict[str, str] | None = None
    health_rules: list[str] | None = None
    neo_role_arn: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, document: Any, where: str) -> AccountConfig:
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ConfigError(f'{where}: not an edgeml configuration (no "format": "{FORMAT}")')
        names = {item.name for item in fields(cls)}
        unknown = sorted(set(document) - names - {"format"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}")
        for key in ("region", "account"):
            if not isinstance(document.get(key), str):
                raise ConfigError(f"{where}: {key!r} must be a string")
        return cls(**{key: value for key, value in document.items() if key != "format"})


def default_path() -> Path:
    explicit = os.environ.get("EDGEML_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgeml" / "config.json"


def read(path: Path) -> AccountConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no configuration yet (run `edgeml config from-stack STACK...`)") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
    return AccountConfig.from_json(document, str(path))


def existing(path: Path) -> AccountConfig | None:
    """The file's configuration, None when there is no file; refuses a file that is not ours."""
    if not path.exists():
        return None
    return read(path)


def write(path: Path, config: AccountConfig) -> None:
    """Writes atomically (a temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config.to_json(), indent=2, sort_keys=True) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
