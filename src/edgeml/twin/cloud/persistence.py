"""moto's state for the services the twin serves, pickled into the state directory and loaded at start.

moto keeps its state in process-global backend dicts (account -> region -> backend); they pickle (S3 keys
included: moto's FakeKey reads its buffer into its pickled state). `load` replaces what this process has
for those services, so an endpoint that loads state should be the only moto user in its process (what
`edgeml twin up` is); a fresh state directory loads nothing.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

from moto.backends import get_backend

LOG = logging.getLogger(__name__)

MOTO_SERVICES = ("s3", "iot", "iot-data", "iam", "sts", "kinesis", "cloudwatch", "sagemaker")
STATE_FILE = "moto-state.pickle"
_FORMAT = 1


class StateUnreadable(Exception):
    """The state file exists but cannot be loaded (another moto version, or damaged)."""


def _backends() -> dict[str, Any]:
    return {name: get_backend(name) for name in MOTO_SERVICES}  # type: ignore[call-overload]


def save_moto_state(state_dir: Path) -> None:
    """Writes every listed service's backends atomically (a reader never sees half a file)."""
    snapshot = {"format": _FORMAT, "backends": {name: dict(backend) for name, backend in _backends().items()}}
    target = state_dir / STATE_FILE
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        pickle.dump(snapshot, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(target)


def load_moto_state(state_dir: Path) -> bool:
    """Loads what `save_moto_state` wrote; False when there is nothing to load."""
    source = state_dir / STATE_FILE
    if not source.exists():
        return False
    try:
        with source.open("rb") as data:
            snapshot = pickle.load(data)  # the twin's own file in its own state directory
    except (OSError, pickle.UnpicklingError, AttributeError, ImportError, EOFError) as error:
        raise StateUnreadable(f"{source}: cannot be loaded ({type(error).__name__}: {error})") from None
    if not isinstance(snapshot, dict) or snapshot.get("format") != _FORMAT:
        raise StateUnreadable(f"{source}: not a state file of this twin version")
    live = _backends()
    for name, accounts in snapshot["backends"].items():
        if name in live:
            live[name].clear()
            live[name].update(accounts)
    LOG.info("loaded moto state for %s from %s", ", ".join(snapshot["backends"]), source)
    return True
