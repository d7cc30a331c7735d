"""The Python the demo's device twins run, and the offline wheelhouse their Runtime Install step uses.

A core device brings its own `python3` (the Runtime recipe's Install step calls `python3 -m
edgeml_runtime`), and a deployer who wants an offline install sets the Runtime's `WheelhouseDir`. The demo
does both: the device OS's PATH is the folder of a Python 3.10+ that has a wheelhouse of the Runtime's
pinned requirements in the shared cache (${XDG_CACHE_HOME:-~/.cache}/edgeml/wheelhouse/<platform>-py<v>,
the one the device tests fill); when none has one, the cache is filled once for the first python3 on
PATH with that Python's own `pip download` (this needs the package index, once).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from edgeml.errors import EdgemlError
from edgeml.machine import runtime_requirements_platform

_VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"


class NoDevicePython(EdgemlError):
    """No Python 3.10+ for the device twins, or no wheelhouse for it."""


@dataclass(frozen=True)
class DevicePython:
    interpreter: Path  # the device OS's python3
    version: str  # "3.12"
    wheelhouse: Path  # what the deployment gives the Runtime as WheelhouseDir

    @property
    def system_path(self) -> str:
        """The device OS's PATH: its python3's folder, then the usual system folders."""
        return f"{self.interpreter.parent}:/usr/local/bin:/usr/bin:/bin"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeml" / "wheelhouse"


def runtime_platform() -> str:
    found = runtime_requirements_platform()
    if found is None:
        machine = platform.machine().lower()
        raise NoDevicePython(f"the Runtime component has no requirements for this machine ({machine})")
    return found


def _version(interpreter: Path) -> str | None:
    try:
        probe = subprocess.run(
            [str(interpreter), "-c", _VERSION_PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    version = probe.stdout.strip()
    if probe.returncode != 0 or tuple(int(part) for part in version.split(".")) < (3, 10):
        return None
    return version


def _candidates() -> list[Path]:
    """python3 on PATH first, then pyenv's installed versions, newest first."""
    found: list[Path] = []
    on_path = shutil.which("python3")
    if on_path:
        found.append(Path(on_path))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        found += sorted(pyenv.glob("3.*/bin/python3"), reverse=True)
    return found


def _complete(wheelhouse: Path, requirements: Path) -> bool:
    marker = wheelhouse / ".complete"
    return marker.is_file() and marker.read_text() == requirements.read_text()


def _fill(interpreter: Path, wheelhouse: Path, requirements: Path) -> None:
    """`pip download` of the requirements by the device's own pip, into a fresh folder then renamed."""
    partial = wheelhouse.with_name(f"{wheelhouse.name}.partial-{uuid.uuid4().hex[:8]}")
    command = [str(interpreter), "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(partial)]
    done = subprocess.run(
        [*command, "-r", str(requirements)], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise NoDevicePython(
            f"no offline wheelhouse for the device twins' Runtime Install in {cache_root()}, and pip could "
            f"not fill {wheelhouse} ({last})"
        )
    (partial / ".complete").write_text(requirements.read_text())
    shutil.rmtree(wheelhouse, ignore_errors=True)
    partial.rename(wheelhouse)


def find_device_python(requirements_dir: Path) -> tuple[DevicePython, bool]:
    """The device twins' Python and wheelhouse; True when the wheelhouse had to be downloaded now."""
    target = runtime_platform()
    requirements = requirements_dir / f"{target}.txt"
    usable = [(path, version) for path in _candidates() if (version := _version(path)) is not None]
    if not usable:
        raise NoDevicePython("the device twins need a Python 3.10 or newer as python3 (none found)")
    for interpreter, version in usable:
        wheelhouse = cache_root() / f"{target}-py{version}"
        if _complete(wheelhouse, requirements):
            return DevicePython(interpreter, version, wheelhouse), False
    interpreter, version = usable[0]
    wheelhouse = cache_root() / f"{target}-py{version}"
    wheelhouse.parent.mkdir(parents=True, exist_ok=True)
    _fill(interpreter, wheelhouse, requirements)
    return DevicePython(interpreter, version, wheelhouse), True
