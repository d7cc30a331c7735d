"""The Runtime's real Install step and the inference app in a Debian bookworm arm64 userland on x86_64.

User-space emulation only (scripts/_rootfs.sh: debootstrap --foreign, PRoot 5.4, qemu-aarch64-static; no
binfmt_misc, no kernel setting). Inside the guest, the aarch64 manifest's Install script of the built
Runtime artifact (interpolated as the nucleus does) builds the venv with onnxruntime's aarch64 wheel,
offline from a cached wheelhouse; the Inference manifest's Run script then starts the app, which talks to
the IPC twin over a Unix socket in a bound scratch folder and to the Stream Manager twin on 127.0.0.1. Its
scores equal the host app's within 2e-5 and its results reach the cloud twin's Kinesis through the
Stream Manager export.

Only the first run pays: the rootfs (about 8 minutes of emulated debootstrap) and the rootfs with the
venv installed (about 2 minutes of emulated pip) are cached as zstd tarballs outside the checkout, the
second keyed by the requirements, the installer and the wheels. A warm run restores that, runs the same
Install step (which finds its lock hash and leaves the venv as is) and the app.

Binds: /dev, /proc, a fake aarch64 /proc/cpuinfo and CPU lists written to a scratch folder (qemu shows
the host's x86 cpuinfo, on which onnxruntime's cpuinfo crashes) and the scratch folder with the IPC
socket. Everything else (components, model, wheels) is copied in: binds are read-write and the guest
runs as (fake) root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from device_venv_harness import (
    CACHE,
    COMPONENT,
    INFERENCE,
    REPO,
    RUNTIME,
    App,
    DeviceTwins,
    app_configuration,
    post,
    scores,
    wheelhouse,
)

from edgeml.components.build import build_project
from edgeml.twin.cloud.motoserver import MotoServer
from edgeml.twin.cloud.readback import kinesis_payloads
from edgeml.twin.device.nucleus.interpolation import Interpolator, ResolvedService
from edgeml.twin.device.nucleus.paths import NucleusPaths
from edgeml.twin.loopback import free_port, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from inference_kit import holdout, png, write_model_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
ROOTFS_SCRIPT = REPO / "scripts" / "_rootfs.sh"
GUEST_ROOT = Path("/greengrass/v2")  # the nucleus root inside the guest
RUNTIME_NAME = "com.edgeml.Runtime"
MODEL_NAME = "com.edgeml.model.Digits"
VERSION = "1.0.0"
SAMPLES = (0, 1, 2, 3, 4)
TOLERANCE = 2e-5
GUEST_PYTHON = "3.11"  # bookworm's python3
AARCH64_WHEELS = [
    "--python-version", GUEST_PYTHON, "--implementation", "cp", "--abi", "cp311",
    *[arg for tag in ("2_28", "2_27", "2_17") for arg in ("--platform", f"manylinux_{tag}_aarch64")],
    "--platform", "manylinux2014_aarch64",
]  # fmt: skip


def _rootfs_tool(*args: str) -> str:
    completed = subprocess.run(
        ["bash", str(ROOTFS_SCRIPT), *args], capture_output=True, text=True, timeout=1500, check=False
    )
    if completed.returncode != 0:
        pytest.skip(f"no arm64 userland here: {completed.stderr.strip().splitlines()[-1]}")
    return completed.stdout.strip().splitlines()[-1]


def _fake_cpu(scratch: Path) -> dict[str, Path]:
    """What an aarch64 Cortex-A72 with 4 cores reports, as scratch files to bind over qemu's view."""
    core = (
        "BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n"
    )
    (scratch / "cpuinfo").write_text("".join(f"processor\t: {n}\n{core}" for n in range(4)))
    (scratch / "cpus").write_text("0-3\n")
    return {
        "/proc/cpuinfo": scratch / "cpuinfo",
        "/sys/devices/system/cpu/possible": scratch / "cpus",
        "/sys/devices/system/cpu/present": scratch / "cpus",
    }


class Guest:
    """A restored rootfs and how to run a command in it (PRoot + qemu-aarch64-static)."""

    def __init__(self, root: Path, scratch: Path, proot: str, qemu: str) -> None:
        self.root = root
        self.scratch = scratch
        self.proot = proot
        self.qemu = qemu
        self.binds = {**_fake_cpu(scratch), str(scratch / "shared"): scratch / "shared"}
        (scratch / "shared").mkdir()

    def command(self, argv: list[str], cwd: Path) -> list[str]:
        command = [self.proot, "-0", "-r", str(self.root), "-q", self.qemu, "-b", "/dev", "-b", "/proc"]
        for guest_path, host_path in self.binds.items():
            command += ["-b", f"{host_path}:{guest_path}"]
        return [*command, "-w", str(cwd), *argv]

    @staticmethod
    def env(extra: dict[str, str]) -> dict[str, str]:
        # seccomp acceleration makes every guest exit 182 on this kernel (docs/device-platforms.md)
        base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
        return {**base, "PROOT_NO_SECCOMP": "1", **extra}

    def host_path(self, guest: Path) -> Path:
        return self.root / guest.relative_to("/")


def _interpolator(services: dict[str, ResolvedService]) -> Interpolator:
    return Interpolator(NucleusPaths(GUEST_ROOT), "edgeml-aarch64-core", services)


def _manifest(name: str) -> dict[str, Any]:
    recipe = yaml.safe_load((REPO / "recipes" / f"{name}.yaml").read_text())
    [manifest] = [
        m for m in recipe["Manifests"] if m["Platform"] == {"os": "linux", "architecture": "aarch64"}
    ]
    return dict(manifest)


def _runtime_configuration(wheels: Path) -> dict[str, Any]:
    recipe = yaml.safe_load((REPO / "recipes" / f"{RUNTIME_NAME}.yaml").read_text())
    return {**recipe["ComponentConfiguration"]["DefaultConfiguration"], "WheelhouseDir": str(wheels)}


def _deploy_runtime_artifact(guest: Guest, tmp: Path) -> None:
    """gdk-style build of the Runtime component, unzipped where the nucleus unarchives it."""
    (tmp / "repo" / "recipes").mkdir(parents=True)
    shutil.copyfile(
        REPO / "recipes" / f"{RUNTIME_NAME}.yaml", tmp / "repo" / "recipes" / f"{RUNTIME_NAME}.yaml"
    )
    project = tmp / "repo" / "components" / RUNTIME_NAME
    shutil.copytree(RUNTIME, project, ignore=shutil.ignore_patterns("greengrass-build", "__pycache__"))
    [artifact] = build_project(project).artifacts
    target = guest.host_path(NucleusPaths(GUEST_ROOT).unarchive_path(RUNTIME_NAME, VERSION)) / RUNTIME_NAME
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(target)


def _run_install(guest: Guest, wheels: Path) -> subprocess.CompletedProcess[str]:
    """The aarch64 manifest's Install step in the guest, as the nucleus runs it (sh -c, work folder)."""
    services = {RUNTIME_NAME: ResolvedService(VERSION, _runtime_configuration(wheels))}
    install = _interpolator(services).interpolate(
        _manifest(RUNTIME_NAME)["Lifecycle"]["Install"], RUNTIME_NAME, set()
    )
    work = NucleusPaths(GUEST_ROOT).work_path(RUNTIME_NAME)
    guest.host_path(work).mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        guest.command(["/bin/sh", "-c", install["Script"]], work),
        env=guest.env(install["Setenv"]),
        capture_output=True,
        text=True,
        timeout=float(install["Timeout"]),
        check=False,
        start_new_session=True,
    )


def _installed_key(base: str, wheels: Path) -> str:
    digest = hashlib.sha256(Path(base).name.encode())
    for path in sorted((RUNTIME / "requirements").glob("*.txt")) + sorted(
        RUNTIME.glob("edgeml_runtime/*.py")
    ):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update("\n".join(sorted(p.name for p in wheels.glob("*.whl"))).encode())
    return digest.hexdigest()[:16]


def _restore(tarball: Path, root: Path) -> None:
    root.mkdir(parents=True)
    zstd = subprocess.Popen(["zstd", "-dc", "-q", str(tarball)], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "--numeric-owner", "-C", str(root)], stdin=zstd.stdout, check=True)
    assert zstd.wait() == 0


def _save(root: Path, tarball: Path) -> None:
    partial = tarball.with_name(f"{tarball.name}.partial-{uuid.uuid4().hex[:8]}")
    tar = subprocess.Popen(["tar", "-c", "--numeric-owner", "-C", str(root), "."], stdout=subprocess.PIPE)
    subprocess.run(["zstd", "-q", "-T0", "-3", "-o", str(partial)], stdin=tar.stdout, check=True)
    assert tar.wait() == 0
    partial.rename(tarball)


@pytest.fixture(scope="module")
def guest() -> Iterator[tuple[Guest, Path]]:
    for tool in ("debootstrap", "zstd"):
        _rootfs_tool("tool", tool)
    proot, qemu = _rootfs_tool("tool", "proot"), _rootfs_tool("tool", "qemu-aarch64-static")
    base = _rootfs_tool("build")  # cached; about 8 minutes the first time
    requirements = RUNTIME / "requirements" / "linux-aarch64.txt"
    pip = [sys.executable, "-m", "pip"]  # bookworm's 3.11 is the host venv's: markers evaluate alike
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != GUEST_PYTHON:
        pytest.skip(f"the host venv is Python {sys.version.split()[0]}; the aarch64 wheelhouse is for 3.11")
    wheels = wheelhouse(requirements, "linux-aarch64-py3.11", pip, AARCH64_WHEELS)
    scratch = Path(f"/tmp/edgeml-a64-{uuid.uuid4().hex[:8]}")  # short: the IPC socket path
    scratch.mkdir()
    try:
        root = scratch / "rootfs"
        installed = CACHE / "aarch64" / f"installed-{_installed_key(base, wheels)}.tar.zst"
        _restore(installed if installed.is_file() else Path(base), root)
        running = Guest(root, scratch, proot, qemu)
        # Copied in, never bound: the guest runs as root and binds are read-write.
        guest_wheels = Path("/opt/edgeml-wheelhouse")
        if not running.host_path(guest_wheels).is_dir():
            shutil.copytree(wheels, running.host_path(guest_wheels))
        _deploy_runtime_artifact(running, scratch / "build")
        result = _run_install(running, guest_wheels)
        assert result.returncode == 0, result.stdout + result.stderr
        status = "unchanged" if installed.is_file() else "created"
        assert result.stdout.startswith(f"edgeml-runtime: {status} "), result.stdout + result.stderr
        if not installed.is_file():
            _save(root, installed)
        yield running, guest_wheels
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _host_scores(root: Path) -> list[dict[str, float]]:
    model = write_model_dir(root / "model")
    port = free_port()
    twins = DeviceTwins(root, app_configuration(model, root / "input", port))
    env = {**os.environ, **twins.app_env(), "PYTHONPATH": str(INFERENCE)}
    app = App([sys.executable, "-m", "edgeml_inference"], env, root, root / "app.log", port)
    x, _ = holdout()
    try:
        app.wait_healthy()
        return [scores(post(port, png(x[index]))[1]) for index in SAMPLES]
    finally:
        app.stop()
        twins.stop()


def test_install_and_classify_in_an_arm64_userland(guest: tuple[Guest, Path], aws: MotoServer) -> None:
    running, _ = guest
    host = running.scratch / "host"
    host.mkdir()
    expected = _host_scores(host)

    # The Inference component's artifact and the model's, where the nucleus unpacks them.
    paths = NucleusPaths(GUEST_ROOT)
    app_dir = running.host_path(paths.unarchive_path(COMPONENT, VERSION)) / COMPONENT
    shutil.copytree(INFERENCE / "edgeml_inference", app_dir / "edgeml_inference")
    write_model_dir(running.host_path(paths.unarchive_path(MODEL_NAME, VERSION)) / "linux-aarch64")
    work = paths.work_path(COMPONENT)
    running.host_path(work).mkdir(parents=True)

    kinesis = f"edgeml-a64-{uuid.uuid4().hex[:8]}"
    boto3.client("kinesis").create_stream(StreamName=kinesis, ShardCount=1)
    boto3.client("kinesis").get_waiter("stream_exists").wait(StreamName=kinesis, WaiterConfig={"Delay": 0.1})
    port = free_port()
    configuration = app_configuration(Path(""), Path("input"), port, kinesis)
    configuration["ModelDirectory"] = ""  # MODEL_DIR from the manifest's Setenv, as on a device
    # Health records to IoT Core off (a deployer's setting): with that sink's one more thread the app
    # under qemu-user segfaulted or hung after loading the model in every run, and never without it (a
    # second plain IPC sink thread did the same); the crash is qemu failing its own TCG assertion
    # (cpu_exec: cpu == current_cpu), not the app: docs/device-platforms.md. Not seen on the host.
    configuration["IoTCoreHealthTopic"] = ""
    twins = DeviceTwins(running.scratch / "shared", configuration)
    services = {
        COMPONENT: ResolvedService(VERSION, configuration),
        RUNTIME_NAME: ResolvedService(VERSION, _runtime_configuration(Path("/unused"))),
        MODEL_NAME: ResolvedService(VERSION, {}),
    }
    lifecycle = _interpolator(services).interpolate(
        _manifest(COMPONENT)["Lifecycle"], COMPONENT, {RUNTIME_NAME, MODEL_NAME}
    )
    env = running.env({**lifecycle["Setenv"], **twins.app_env()})
    command = running.command(["/bin/sh", "-c", lifecycle["Run"]["Script"]], work)
    app = App(command, env, running.scratch, running.scratch / "guest-app.log", port)
    x, _ = holdout()
    try:
        app.wait_healthy()
        got: list[tuple[dict[str, Any], dict[str, float]]] = []
        for index in SAMPLES:
            status, body = post(port, png(x[index]))
            assert status == 200 and body["status"] == "ok", body
            got.append((body, scores(body)))
        for (body, guest_scores), host_scores in zip(got, expected, strict=True):
            assert guest_scores.keys() == host_scores.keys()
            assert all(abs(guest_scores[k] - host_scores[k]) <= TOLERANCE for k in guest_scores), body

        def all_exported() -> list[bytes] | None:
            payloads = kinesis_payloads(kinesis)
            return payloads if len(payloads) >= len(SAMPLES) else None

        exported = wait_for(all_exported, "results exported to Kinesis", timeout_s=60)
        ids = {json.loads(payload)["request_id"] for payload in exported}
        assert ids >= {body["request_id"] for body, _ in got}
    finally:
        app.stop()
        twins.stop()
    log = (running.scratch / "guest-app.log").read_text(errors="replace")
    assert "cpuinfo_initialize failed" not in log  # the fake CPU description was read


def test_without_python3_venv_the_install_step_names_the_package(guest: tuple[Guest, Path]) -> None:
    """Stock Debian/Ubuntu/Jetson images lack python3-venv: the Install step says which package to add.

    Runs last in this module: it removes the package from the (scratch) guest.
    """
    running, wheels = guest
    removed = subprocess.run(
        running.command(["dpkg", "--remove", "python3-venv", "python3.11-venv"], Path("/")),
        env=running.env({}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        start_new_session=True,
    )
    assert removed.returncode == 0, removed.stdout + removed.stderr
    venv = NucleusPaths(GUEST_ROOT).work_path(RUNTIME_NAME) / "venv"
    shutil.rmtree(running.host_path(venv))  # a device that never had the venv
    result = _run_install(running, wheels)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: python3-venv is missing (/usr/bin/python3 has no ensurepip, so python3 -m venv fails): "
        "apt install python3.11-venv"
    ]
    assert not running.host_path(venv).exists()
