"""This machine's architecture in the names the rest of the suite uses (the cloud side's one copy).

- the nucleus's platform `architecture` (amd64, aarch64, arm), which recipes' manifests match;
- the Runtime component's requirements platform (linux-x86_64, linux-aarch64), the name of its
  requirements file.

The device side has its own copy in com.edgeml.Runtime's installer (device code never imports this
package); tests/unit/test_rules_per_side.py checks that the two agree.
"""

from __future__ import annotations

import platform

# uname -m (as Python's platform.machine() reports it, lower case) -> the nucleus's architecture.
NUCLEUS_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "aarch64", "arm64": "aarch64"}
# The nucleus's architecture -> the Runtime's requirements platform; none for 32-bit arm (no wheels).
RUNTIME_REQUIREMENTS_PLATFORMS = {"amd64": "linux-x86_64", "aarch64": "linux-aarch64"}


def nucleus_architecture(machine: str | None = None) -> str:
    """The nucleus's `architecture` for `machine` (default: this one): 32-bit arm* is `arm`, an unknown
    machine keeps its own name."""
    name = (machine if machine is not None else platform.machine()).lower()
    if name in NUCLEUS_ARCHITECTURES:
        return NUCLEUS_ARCHITECTURES[name]
    return "arm" if name.startswith("arm") else name


def runtime_requirements_platform(machine: str | None = None) -> str | None:
    """The Runtime's requirements platform for `machine` (default: this one), None where it has none."""
    return RUNTIME_REQUIREMENTS_PLATFORMS.get(nucleus_architecture(machine))
