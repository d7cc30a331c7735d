"""Creates the inference venv at a configured root from pinned per-platform requirements.

Runs on the core device in the Runtime component's Install step, before any venv exists, so it uses
the standard library only. Idempotent: the venv holds a lock file with the hash of what it was built
from (requirements file, platform, accelerator, Python version); when that matches, nothing is done.
When it differs, the old venv is set aside, a new one is built in its place, and the old one is
restored if the build fails or runs past the timeout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = "edgeml-runtime.lock.json"
ACCELERATORS = ("cpu", "gpu")
DEFAULT_REQUIREMENTS_DIR = Path(__file__).resolve().parent.parent / "requirements"
DEFAULT_TIMEOUT_S = 1200.0

# uname -m (as Python's platform.machine() reports it) -> the name of the requirements file.
_MACHINES = {
    "x86_64": "linux-x86_64",
    "amd64": "linux-x86_64",
    "aarch64": "linux-aarch64",
    "arm64": "linux-aarch64",
    "armv7l": "linux-armv7l",
    "armv7": "linux-armv7l",
}
SUPPORTED_PLATFORMS = tuple(sorted(set(_MACHINES.values())))


class InstallerError(Exception):
    """A failure the device operator can act on; printed as one line, exit status 1."""


class UnsupportedPlatform(InstallerError):
    """The device is not one of the platforms with a requirements file."""


class MissingRequirements(InstallerError):
    """No requirements file for this platform and accelerator."""


class InstallTimeout(InstallerError):
    """Creating the venv and installing the requirements took longer than the configured timeout."""


class InstallFailed(InstallerError):
    """venv or pip exited non-zero."""


@dataclass(frozen=True)
class InstallRequest:
    """What to install where (the recipe's configuration, resolved)."""

    venv_root: Path
    platform: str
    accelerator: str = "cpu"
    requirements_dir: Path = DEFAULT_REQUIREMENTS_DIR
    wheelhouse: Path | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    python: str = sys.executable


@dataclass(frozen=True)
class InstallResult:
    """What the installer did: "created", "replaced" or "unchanged"."""

    status: str
    venv_root: Path
    lock_hash: str
    requirements: Path


def detect_platform(system: str | None = None, machine: str | None = None) -> str:
    """The requirements platform name of this machine (linux-x86_64, linux-aarch64, linux-armv7l)."""
    system = (system if system is not None else platform.system()).lower()
    machine = (machine if machine is not None else platform.machine()).lower()
    name = _MACHINES.get(machine) if system == "linux" else None
    if name is None:
        raise UnsupportedPlatform(
            f"unsupported platform {system}/{machine}: supported are {', '.join(SUPPORTED_PLATFORMS)}"
        )
    return name


def requirements_file(requirements_dir: Path, platform_name: str, accelerator: str) -> Path:
    """requirements/<platform>.txt for cpu, requirements/<platform>-gpu.txt for gpu."""
    if platform_name not in SUPPORTED_PLATFORMS:
        raise UnsupportedPlatform(
            f"unsupported platform {platform_name}: supported are {', '.join(SUPPORTED_PLATFORMS)}"
        )
    if accelerator not in ACCELERATORS:
        raise InstallerError(f"Accelerator '{accelerator}': expected one of {', '.join(ACCELERATORS)}")
    suffix = "" if accelerator == "cpu" else f"-{accelerator}"
    path = requirements_dir / f"{platform_name}{suffix}.txt"
    if not path.is_file():
        available = (
            sorted(p.name for p in requirements_dir.glob("*.txt")) if requirements_dir.is_dir() else []
        )
        raise MissingRequirements(
            f"{path}: no requirements for {platform_name} with Accelerator {accelerator} "
            f"(available: {', '.join(available) or 'none'})"
        )
    return path


def python_version(python: str) -> str:
    """major.minor of the interpreter that will create the venv."""
    if Path(python).resolve() == Path(sys.executable).resolve():
        return f"{sys.version_info[0]}.{sys.version_info[1]}"
    completed = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise InstallFailed(f"{python}: cannot run the interpreter to create the venv")
    return completed.stdout.strip()


def lock_hash(requirements: str, platform_name: str, accelerator: str, version: str) -> str:
    """sha256 over everything the venv's content depends on (not where the wheels come from)."""
    payload = json.dumps(
        {
            "requirements": requirements,
            "platform": platform_name,
            "accelerator": accelerator,
            "python": version,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def read_lock(venv_root: Path) -> str | None:
    """The lock hash recorded in an existing venv, or None when there is no complete venv there."""
    lock = venv_root / LOCK_FILE
    if not (venv_root / "bin" / "python").exists() or not lock.is_file():
        return None
    try:
        value = json.loads(lock.read_text(encoding="utf-8")).get("hash")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _run(command: list[str], deadline: float, timeout_s: float, what: str) -> None:
    """Runs `command` in its own process group; kills the whole group when the deadline passes."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise InstallTimeout(f"{what}: install timed out after {timeout_s:g} s (InstallTimeoutS)")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise InstallTimeout(f"{what}: install timed out after {timeout_s:g} s (InstallTimeoutS)") from None
    if process.returncode != 0:
        tail = " | ".join(line for line in output.strip().splitlines()[-5:])
        raise InstallFailed(f"{what} failed (exit {process.returncode}): {tail}")


def _build(request: InstallRequest, requirements: Path, digest: str, version: str) -> None:
    deadline = time.monotonic() + request.timeout_s
    root = request.venv_root
    _run([request.python, "-m", "venv", str(root)], deadline, request.timeout_s, f"creating venv {root}")
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
    if request.wheelhouse is not None:
        pip += ["--no-index", "--find-links", str(request.wheelhouse)]
    pip += ["-r", str(requirements)]
    _run(pip, deadline, request.timeout_s, f"pip install -r {requirements.name}")
    lock = {
        "hash": digest,
        "requirements": requirements.name,
        "platform": request.platform,
        "accelerator": request.accelerator,
        "python": version,
    }
    (root / LOCK_FILE).write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def install(request: InstallRequest) -> InstallResult:
    """Creates or refreshes the venv; does nothing when its lock hash matches."""
    if request.timeout_s <= 0:
        raise InstallerError(f"InstallTimeoutS {request.timeout_s:g}: expected a positive number of seconds")
    requirements = requirements_file(request.requirements_dir, request.platform, request.accelerator)
    if request.wheelhouse is not None and not request.wheelhouse.is_dir():
        raise InstallerError(f"WheelhouseDir {request.wheelhouse}: no such directory")
    version = python_version(request.python)
    digest = lock_hash(
        requirements.read_text(encoding="utf-8"), request.platform, request.accelerator, version
    )
    root = request.venv_root
    if read_lock(root) == digest:
        return InstallResult("unchanged", root, digest, requirements)
    root.parent.mkdir(parents=True, exist_ok=True)
    previous = root.with_name(root.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    existed = root.exists()
    if existed:
        root.rename(previous)
    try:
        _build(request, requirements, digest, version)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        if existed:
            previous.rename(root)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return InstallResult("replaced" if existed else "created", root, digest, requirements)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edgeml_runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--venv-root", required=True, help="venv folder (VenvRoot); relative to the cwd")
    parser.add_argument(
        "--accelerator", default="cpu", help="cpu | gpu (Accelerator): picks the requirements"
    )
    parser.add_argument(
        "--platform", default="auto", help=f"auto (uname -m) or one of {', '.join(SUPPORTED_PLATFORMS)}"
    )
    parser.add_argument(
        "--wheelhouse", default="", help="offline: install only from this folder (WheelhouseDir)"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds for venv + pip (InstallTimeoutS)"
    )
    parser.add_argument("--requirements-dir", default=str(DEFAULT_REQUIREMENTS_DIR), help=argparse.SUPPRESS)
    parser.add_argument("--python", default=sys.executable, help="interpreter that creates the venv")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 on success, 1 with one `error:` line on failure."""
    args = _parser().parse_args(argv)
    try:
        platform_name = detect_platform() if args.platform == "auto" else args.platform
        request = InstallRequest(
            venv_root=Path(args.venv_root).absolute(),
            platform=platform_name,
            accelerator=args.accelerator.strip().lower(),
            requirements_dir=Path(args.requirements_dir),
            wheelhouse=Path(args.wheelhouse).absolute() if args.wheelhouse.strip() else None,
            timeout_s=args.timeout,
            python=args.python,
        )
        result = install(request)
    except InstallerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    summary = f"{result.requirements.name}, lock {result.lock_hash[:12]}"
    print(f"edgeml-runtime: {result.status} {result.venv_root} ({summary})")
    return 0
