"""Creates the inference venv at a configured root from pinned per-platform requirements.

Runs on the core device in the Runtime component's Install step, before any venv exists, so it uses
the standard library only. Idempotent: the venv holds a lock file with the hash of what it was built
from (requirements file, platform, accelerator as resolved, Python version); when that matches,
nothing is done. When it differs, the old venv is set aside, a new one is built in its place, and the
old one is restored if the build fails or runs past the timeout.

Before anything is created it checks, on the interpreter that will create the venv, what stock device
images get wrong: a Python older than the requirements file's `# requires-python:` line, a C library
older than its `# requires-glibc:` line (the pinned wheels are manylinux ones), and a Python without
ensurepip (Debian/Ubuntu/JetPack ship it in python3.X-venv), each named in one line.
Accelerator `auto` (the default) resolves to cpu or gpu first: accelerator.py.
Runs on Python 3.10 and newer (JetPack 6, Ubuntu 22.04); the probe it runs in the target interpreter runs
on any Python 3.

What a build costs, one device alone (Python 3.12, the x86_64 closure from a local wheelhouse, CPU seconds):
`python -m venv` with pip 2.6 (ensurepip unpacks and byte-compiles pip), `pip install` 5.4, of which
byte-compiling every installed .py is 2.5 and resolving the fully pinned closure next to nothing. So a
build (1) creates the venv `--without-pip` when the creating interpreter has pip 22.3+ and runs that pip
into the venv (`pip --python <venv>`: its startup from its own compiled files, no pip copied in), else
the venv with pip as before; (2) installs `--no-compile`: each module is compiled when first imported
and its .pyc written beside it then (the venv belongs to the component user), so the device pays
only for what the app imports, once. The resolver stays on: with pins and `--no-index` it costs nothing
measurable and it is what fails the Install when the closure is incomplete. Together: 1.8 CPU s a build,
from 8.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edgeml_runtime.accelerator import ACCELERATORS, AUTO, CHOICES, choose_accelerator

LOCK_FILE = "edgeml-runtime.lock.json"
DEFAULT_REQUIREMENTS_DIR = Path(__file__).resolve().parent.parent / "requirements"
DEFAULT_TIMEOUT_S = 1200.0

# uname -m (as Python's platform.machine() reports it) -> the name of the requirements file.
_MACHINES = {
    "x86_64": "linux-x86_64",
    "amd64": "linux-x86_64",
    "aarch64": "linux-aarch64",
    "arm64": "linux-aarch64",
}
SUPPORTED_PLATFORMS = tuple(sorted(set(_MACHINES.values())))
# 32-bit ARM is refused by name: PyPI has no armv7l wheels of onnxruntime, numpy, Pillow or awscrt.
_UNSUPPORTED_32BIT_ARM = ("armv7l", "armv7", "armv6l", "armhf", "arm")
_32BIT_ARM_REASON = (
    "32-bit ARM is not supported: PyPI has no armv7l wheels of onnxruntime, numpy, Pillow or awscrt; "
    "install a 64-bit OS (aarch64)"
)

# What the requirements file asks of the device, in its header comments.
_REQUIRES = re.compile(r"^#\s*requires-(python|glibc):\s*(.+?)\s*$", re.MULTILINE)
_CLAUSE = re.compile(r"^(>=|<)\s*(\d+(?:\.\d+)*)$")

# Run in the interpreter that creates the venv (any Python 3): its version, C library and ensurepip.
_PROBE = (
    "import importlib.util, json, os, sys\n"
    "try:\n    libc = os.confstr('CS_GNU_LIBC_VERSION') or ''\n"
    "except (AttributeError, ValueError, OSError):\n    libc = ''\n"
    "try:\n    from importlib.metadata import version as dist_version\n    pip = dist_version('pip')\n"
    "except Exception:\n    pip = ''\n"
    "print(json.dumps({'version': list(sys.version_info[:2]), 'libc': libc,"
    " 'ensurepip': importlib.util.find_spec('ensurepip') is not None, 'pip': pip}))\n"
)
# `pip --python <interpreter>` (pip 22.3, pip.pypa.io "pip" CLI reference) runs this pip's own code in
# the venv's interpreter; with it the venv needs no pip of its own.
PIP_PYTHON_OPTION = (22, 3)


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


class UnfitInterpreter(InstallerError):
    """The interpreter or the OS under it lacks what the requirements need (version, glibc, venv)."""


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
    if system == "linux" and machine in _UNSUPPORTED_32BIT_ARM:
        raise UnsupportedPlatform(f"unsupported platform linux/{machine}: {_32BIT_ARM_REASON}")
    if name is None:
        raise UnsupportedPlatform(
            f"unsupported platform {system}/{machine}: supported are {', '.join(SUPPORTED_PLATFORMS)}"
        )
    return name


def requirements_file(requirements_dir: Path, platform_name: str, accelerator: str) -> Path:
    """requirements/<platform>.txt for cpu, requirements/<platform>-gpu.txt for gpu."""
    if platform_name in ("linux-armv7l", "linux-arm"):
        raise UnsupportedPlatform(f"unsupported platform {platform_name}: {_32BIT_ARM_REASON}")
    if platform_name not in SUPPORTED_PLATFORMS:
        raise UnsupportedPlatform(
            f"unsupported platform {platform_name}: supported are {', '.join(SUPPORTED_PLATFORMS)}"
        )
    if accelerator not in CHOICES:  # auto is resolved before (accelerator.py)
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


@dataclass(frozen=True)
class Interpreter:
    """What the probe found in the interpreter that will create the venv."""

    python: str
    version: tuple[int, int]
    glibc: tuple[int, ...] | None  # None: not glibc (musl) or unknown
    has_ensurepip: bool
    pip_version: tuple[int, ...] | None = None  # None: no pip in that interpreter

    @property
    def drives_venv_pip(self) -> bool:
        """True when its own pip can install into a venv made without pip (`pip --python`)."""
        return self.pip_version is not None and self.pip_version[:2] >= PIP_PYTHON_OPTION

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


def probe_interpreter(python: str) -> Interpreter:
    """Runs the probe in `python`; one clear line when it cannot run at all."""
    try:
        completed = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UnfitInterpreter(f"{python}: cannot run the interpreter to create the venv ({error})") from None
    try:
        found = json.loads(completed.stdout)
        major, minor = (int(part) for part in found["version"])
    except (ValueError, KeyError, TypeError):
        raise UnfitInterpreter(f"{python}: cannot run the interpreter to create the venv") from None
    libc = str(found.get("libc") or "")
    glibc = _version_tuple(libc.split()[-1]) if libc.startswith("glibc ") else None
    pip_text = re.match(r"\d+(?:\.\d+)*", str(found.get("pip") or ""))
    pip_version = _version_tuple(pip_text.group(0)) if pip_text else None
    return Interpreter(python, (major, minor), glibc, bool(found.get("ensurepip")), pip_version)


def _version_tuple(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return None


def requirements_needs(requirements: Path) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """The `# requires-python:` and `# requires-glibc:` clauses of a requirements file."""
    needs: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
    for kind, spec in _REQUIRES.findall(requirements.read_text(encoding="utf-8")):
        clauses = needs.setdefault(kind, [])
        for raw in spec.split(","):
            text = raw.strip()
            bare = _version_tuple(text)
            match = _CLAUSE.match(text)
            if bare is not None:  # "2.28": the least version
                clauses.append((">=", bare))
            elif match is not None:
                version = _version_tuple(match.group(2))
                assert version is not None  # the pattern admits only digits and dots
                clauses.append((match.group(1), version))
            else:
                raise InstallerError(f"{requirements}: requires-{kind}: cannot read '{text}'")
    return needs


def _fits(version: tuple[int, ...], clauses: list[tuple[str, tuple[int, ...]]]) -> bool:
    return all(version >= bound if op == ">=" else version < bound for op, bound in clauses)


def _text(clauses: list[tuple[str, tuple[int, ...]]]) -> str:
    return ",".join(op + ".".join(map(str, bound)) for op, bound in clauses)


def check_interpreter(interpreter: Interpreter, requirements: Path) -> None:
    """Python version, glibc and venv support, before anything is created; one line naming the fix."""
    needs = requirements_needs(requirements)
    python_needs = needs.get("python", [])
    if not _fits(interpreter.version, python_needs):
        raise UnfitInterpreter(
            f"Python {interpreter.version_text} ({interpreter.python}) does not fit {requirements.name}, "
            f"which needs Python {_text(python_needs)}: install a supported python3 "
            "(Ubuntu 22.04 and JetPack 6 ship 3.10) and set it with --python"
        )
    glibc_needs = needs.get("glibc", [])
    if glibc_needs and interpreter.glibc is None:
        raise UnfitInterpreter(
            f"{interpreter.python} does not run on glibc (musl or unknown C library): the wheels pinned in "
            f"{requirements.name} need glibc {_text(glibc_needs)}"
        )
    if interpreter.glibc is not None and not _fits(interpreter.glibc, glibc_needs):
        found = ".".join(map(str, interpreter.glibc))
        raise UnfitInterpreter(
            f"glibc {found} is too old: the wheels pinned in {requirements.name} need glibc "
            f"{_text(glibc_needs)} (Ubuntu 20.04+, Debian 10+, JetPack 5+)"
        )
    if not interpreter.has_ensurepip and not interpreter.drives_venv_pip:
        raise UnfitInterpreter(
            f"python3-venv is missing ({interpreter.python} has no ensurepip, so python3 -m venv fails): "
            f"apt install python{interpreter.version_text}-venv"
        )


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


def _build(request: InstallRequest, requirements: Path, digest: str, interpreter: Interpreter) -> None:
    deadline = time.monotonic() + request.timeout_s
    root = request.venv_root
    venv_python = str(root / "bin" / "python")
    if interpreter.drives_venv_pip:
        venv = [request.python, "-m", "venv", "--without-pip", str(root)]
        pip = [request.python, "-m", "pip", "--python", venv_python]
    else:
        venv = [request.python, "-m", "venv", str(root)]
        pip = [venv_python, "-m", "pip"]
    _run(venv, deadline, request.timeout_s, f"creating venv {root}")
    pip += ["install", "--no-input", "--disable-pip-version-check", "--no-compile"]
    if request.wheelhouse is not None:
        pip += ["--no-index", "--find-links", str(request.wheelhouse)]
    pip += ["-r", str(requirements)]
    _run(pip, deadline, request.timeout_s, f"pip install -r {requirements.name}")
    lock = {
        "hash": digest,
        "requirements": requirements.name,
        "platform": request.platform,
        "accelerator": request.accelerator,
        "python": interpreter.version_text,
    }
    (root / LOCK_FILE).write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def install(request: InstallRequest) -> InstallResult:
    """Creates or refreshes the venv; does nothing when its lock hash matches."""
    if request.timeout_s <= 0:
        raise InstallerError(f"InstallTimeoutS {request.timeout_s:g}: expected a positive number of seconds")
    requirements = requirements_file(request.requirements_dir, request.platform, request.accelerator)
    if request.wheelhouse is not None and not request.wheelhouse.is_dir():
        raise InstallerError(f"WheelhouseDir {request.wheelhouse}: no such directory")
    interpreter = probe_interpreter(request.python)
    check_interpreter(interpreter, requirements)
    version = interpreter.version_text
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
        _build(request, requirements, digest, interpreter)
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
        "--accelerator",
        default=AUTO,
        help="auto | cpu | gpu (Accelerator): picks the requirements; auto: gpu on an nvidia manifest "
        "with an NVIDIA GPU present, else cpu",
    )
    parser.add_argument(
        "--device-accelerator", default="", help="the manifest's platform accelerator (nvidia), if any"
    )
    parser.add_argument("--device-root", default="/", help=argparse.SUPPRESS)  # tests: a fake device
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
        requested = args.accelerator.strip().lower()
        if requested not in ACCELERATORS:
            raise InstallerError(f"Accelerator '{requested}': expected one of {', '.join(ACCELERATORS)}")
        requirements_dir = Path(args.requirements_dir)
        choice = choose_accelerator(
            requested,
            args.device_accelerator.strip().lower(),
            platform_name,
            requirements_dir,
            Path(args.device_root),
        )
        if choice.warning is not None:
            print(f"warning: {choice.warning}", file=sys.stderr)
        request = InstallRequest(
            venv_root=Path(args.venv_root).absolute(),
            platform=platform_name,
            accelerator=choice.accelerator,
            requirements_dir=requirements_dir,
            wheelhouse=Path(args.wheelhouse).absolute() if args.wheelhouse.strip() else None,
            timeout_s=args.timeout,
            python=args.python,
        )
        result = install(request)
    except InstallerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    summary = f"{result.requirements.name}, lock {result.lock_hash[:12]}, Accelerator {requested}"
    if requested == AUTO:
        summary += f": {choice.accelerator} ({choice.reason})"
    print(f"edgeml-runtime: {result.status} {result.venv_root} ({summary})")
    return 0
