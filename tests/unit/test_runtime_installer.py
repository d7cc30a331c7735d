"""The Runtime component's installer, run for real: venv + pip from a tiny local wheelhouse, offline."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from edgeml_runtime.accelerator import NVIDIA_GPU_SIGNS, choose_accelerator, nvidia_gpu_signs
from edgeml_runtime.installer import (
    LOCK_FILE,
    Interpreter,
    MissingRequirements,
    UnfitInterpreter,
    UnsupportedPlatform,
    check_interpreter,
    detect_platform,
    lock_hash,
    probe_interpreter,
    requirements_file,
    requirements_needs,
)
from packaging.markers import Marker
from packaging.requirements import Requirement

from edgeml.components.build import build_project
from edgeml.machine import nucleus_architecture, runtime_requirements_platform
from edgeml.twin.device.artifacts import select_manifest
from edgeml.twin.device.nucleus.interpolation import Interpolator, ResolvedService
from edgeml.twin.device.nucleus.paths import NucleusPaths

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DIR = ROOT / "components" / "com.edgeml.Runtime"


def _wheel(wheelhouse: Path, name: str, version: str) -> Path:
    """Writes a minimal, valid pure-Python wheel (PEP 427) without any build tool or network."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    target = wheelhouse / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return target


def _install(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(RUNTIME_DIR), "PIP_NO_CACHE_DIR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "edgeml_runtime", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _venv_version(venv: Path, package: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {package}; print({package}.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    _wheel(tmp_path / "wheels", "tinypkg", "1.0")
    _wheel(tmp_path / "wheels", "tinypkg", "2.0")
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "linux-x86_64.txt").write_text("tinypkg==1.0\n")
    (tmp_path / "reqs" / "linux-x86_64-gpu.txt").write_text("tinypkg==2.0\n")
    return tmp_path


def _args(project: Path, *extra: str) -> list[str]:
    return [
        "--venv-root", "work/venv",
        "--platform", "linux-x86_64",
        "--requirements-dir", str(project / "reqs"),
        "--wheelhouse", str(project / "wheels"),
        *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_create_skip_reinstall_offline_failure_and_timeout(project: Path) -> None:
    venv = project / "work" / "venv"

    created = _install(project, *_args(project))
    assert created.returncode == 0, created.stderr
    assert "created" in created.stdout
    site = next(venv.glob("lib/python*/site-packages"))
    # This interpreter's pip (22.3+) installed into a venv made without pip, byte-compiling nothing:
    # the first import writes the .pyc (installer.py's docstring has the figures).
    assert not (site / "pip").exists()
    assert not (site / "tinypkg" / "__pycache__").exists()
    assert _venv_version(venv, "tinypkg") == "1.0"
    writes_bytecode = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([str(venv / "bin" / "python"), "-c", "import tinypkg"], env=writes_bytecode, check=True)
    assert list((site / "tinypkg" / "__pycache__").glob("*.pyc"))
    lock = json.loads((venv / LOCK_FILE).read_text())
    assert lock["requirements"] == "linux-x86_64.txt" and lock["accelerator"] == "cpu"

    marker = venv / "marker"
    marker.write_text("untouched")
    skipped = _install(project, *_args(project))
    assert skipped.returncode == 0 and "unchanged" in skipped.stdout
    assert marker.exists(), "a matching lock hash must leave the venv alone"

    # Accelerator=gpu really picks the -gpu requirements file (and changes the lock hash).
    gpu = _install(project, *_args(project, "--accelerator", "gpu"))
    assert gpu.returncode == 0 and "replaced" in gpu.stdout, gpu.stderr
    assert _venv_version(venv, "tinypkg") == "2.0"
    assert not marker.exists()
    assert not (project / "work" / "venv.previous").exists()
    before = (venv / LOCK_FILE).read_text()

    # Offline wheelhouse without the pinned version: pip fails, nothing comes from an index, the
    # previous venv is back in place.
    (project / "reqs" / "linux-x86_64-gpu.txt").write_text("tinypkg==3.0\n")
    failed = _install(project, *_args(project, "--accelerator", "gpu"))
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: pip install -r linux-x86_64-gpu.txt failed"), failed.stderr
    assert (venv / LOCK_FILE).read_text() == before

    timed_out = _install(project, *_args(project, "--accelerator", "gpu", "--timeout", "0.05"))
    assert timed_out.returncode == 1
    assert "timed out after 0.05 s (InstallTimeoutS)" in timed_out.stderr
    assert (venv / LOCK_FILE).read_text() == before
    assert _venv_version(venv, "tinypkg") == "2.0"

    # A changed pin changes the lock hash: the venv is rebuilt with it.
    (project / "reqs" / "linux-x86_64-gpu.txt").write_text("tinypkg==1.0\n")
    changed = _install(project, *_args(project, "--accelerator", "gpu"))
    assert changed.returncode == 0 and "replaced" in changed.stdout, changed.stderr
    assert _venv_version(venv, "tinypkg") == "1.0"


def test_unsupported_platform_is_one_clear_line(project: Path) -> None:
    result = _install(project, "--venv-root", "v", "--platform", "linux-mips")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unsupported platform linux-mips: supported are linux-aarch64, linux-x86_64"
    ]
    assert not (project / "v").exists()


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("Linux", "x86_64", "linux-x86_64"),
        ("Linux", "aarch64", "linux-aarch64"),
    ],
)
def test_detects_the_two_platforms(system: str, machine: str, expected: str) -> None:
    assert detect_platform(system, machine) == expected


@pytest.mark.parametrize(
    ("system", "machine"), [("Linux", "mips64"), ("Windows", "AMD64"), ("Darwin", "arm64")]
)
def test_rejects_other_platforms(system: str, machine: str) -> None:
    with pytest.raises(UnsupportedPlatform, match=f"{system.lower()}/{machine.lower()}"):
        detect_platform(system, machine)


@pytest.mark.parametrize("machine", ["armv7l", "armv6l"])
def test_32_bit_arm_is_refused_saying_why(machine: str) -> None:
    with pytest.raises(UnsupportedPlatform, match=r"32-bit ARM is not supported: PyPI has no armv7l wheels"):
        detect_platform("Linux", machine)
    with pytest.raises(UnsupportedPlatform, match=r"linux-armv7l: 32-bit ARM is not supported"):
        requirements_file(RUNTIME_DIR / "requirements", "linux-armv7l", "cpu")


TOP_LEVEL = {"numpy", "pillow", "awsiotsdk", "awscrt", "stream-manager", "cbor2", "ai-edge-litert"}


@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12", "3.13", "3.14"])
@pytest.mark.parametrize(
    ("name", "accelerator", "backends"),
    [
        ("linux-x86_64", "cpu", {"onnxruntime"}),
        ("linux-x86_64", "gpu", {"onnxruntime-gpu"}),
        ("linux-aarch64", "cpu", {"onnxruntime", "dlr"}),
        ("linux-aarch64", "gpu", {"onnxruntime", "dlr"}),
    ],
)
def test_every_platform_pins_one_version_of_each_package_per_python(
    name: str, accelerator: str, backends: set[str], python: str
) -> None:
    path = requirements_file(RUNTIME_DIR / "requirements", name, accelerator)
    needs = requirements_needs(path)
    assert needs["python"] == [(">=", (3, 10)), ("<", (3, 15))] and needs["glibc"] == [(">=", (2, 28))]
    environment = {"python_version": python, "python_full_version": f"{python}.0"}
    pins: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        [specifier] = requirement.specifier
        assert specifier.operator == "==", line
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(environment):
            pins.setdefault(requirement.name, []).append(specifier.version)
    assert all(len(versions) == 1 for versions in pins.values()), pins
    assert TOP_LEVEL | backends <= set(pins)
    if python == "3.10":  # the last releases that install on Python 3.10
        assert pins["numpy"] == ["2.2.6"] and pins["pillow"][0].startswith("12.")


def test_missing_gpu_requirements_names_what_exists(tmp_path: Path) -> None:
    (tmp_path / "linux-x86_64.txt").write_text("tinypkg==1.0\n")
    with pytest.raises(MissingRequirements, match=r"linux-aarch64-gpu.txt.*available: linux-x86_64.txt\)"):
        requirements_file(tmp_path, "linux-aarch64", "gpu")


def test_probe_reads_this_interpreter() -> None:
    found = probe_interpreter(sys.executable)
    import pip

    assert found.pip_version is not None and ".".join(map(str, found.pip_version)) == pip.__version__
    assert found.version == sys.version_info[:2]
    assert found.glibc is not None and found.glibc == tuple(map(int, platform.libc_ver()[1].split(".")))
    assert found.has_ensurepip


def _requirements(tmp_path: Path) -> Path:
    path = tmp_path / "linux-x86_64.txt"
    path.write_text("# requires-python: >=3.10,<3.15\n# requires-glibc: 2.28\ntinypkg==1.0\n")
    return path


@pytest.mark.parametrize(
    ("interpreter", "message"),
    [
        (
            Interpreter("/usr/bin/python3", (3, 8), (2, 31), True),
            "Python 3.8 (/usr/bin/python3) does not fit linux-x86_64.txt, which needs Python >=3.10,<3.15: ",
        ),
        (Interpreter("/usr/bin/python3", (3, 15), (2, 40), True), "Python 3.15 (/usr/bin/python3) does not"),
        (
            Interpreter("/usr/bin/python3", (3, 10), (2, 27), True),
            "glibc 2.27 is too old: the wheels pinned in linux-x86_64.txt need glibc >=2.28",
        ),
        (
            Interpreter("/usr/bin/python3", (3, 12), None, True),
            "/usr/bin/python3 does not run on glibc (musl",
        ),
        (
            Interpreter("/usr/bin/python3", (3, 10), (2, 35), False),
            "python3-venv is missing (/usr/bin/python3 has no ensurepip, so python3 -m venv fails): "
            "apt install python3.10-venv",
        ),
        (  # a pip older than 22.3 has no --python: the venv needs its own pip, from ensurepip
            Interpreter("/usr/bin/python3", (3, 10), (2, 35), False, (22, 2, 2)),
            "python3-venv is missing (/usr/bin/python3 has no ensurepip",
        ),
    ],
)
def test_unfit_interpreters_are_named_in_one_line(
    tmp_path: Path, interpreter: Interpreter, message: str
) -> None:
    with pytest.raises(UnfitInterpreter) as raised:
        check_interpreter(interpreter, _requirements(tmp_path))
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    check_interpreter(Interpreter("/usr/bin/python3", (3, 10), (2, 35), True), _requirements(tmp_path))


def test_a_python_with_pip_needs_no_ensurepip(tmp_path: Path) -> None:
    # python3-pip without python3-venv: `venv --without-pip` + `pip --python` (pip 22.3+) build it
    without_venv_package = Interpreter("/usr/bin/python3", (3, 10), (2, 35), False, (22, 3))
    check_interpreter(without_venv_package, _requirements(tmp_path))


def test_a_too_old_python_fails_before_anything_is_created(project: Path) -> None:
    old = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(old.glob("3.9*/bin/python3")) + sorted(old.glob("3.8*/bin/python3"))
    if not candidates:
        pytest.skip(f"no Python 3.8/3.9 under {old}: cannot show the version check on a real interpreter")
    (project / "reqs" / "linux-x86_64.txt").write_text("# requires-python: >=3.10\ntinypkg==1.0\n")
    result = _install(project, *_args(project, "--python", str(candidates[0])))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: Python 3.{candidates[0].parts[-3].split('.')[1]} ({candidates[0]}) ")
    assert not (project / "work").exists()


def _nucleus_install_step(
    tmp_path: Path, overrides: dict[str, str], accelerator: str = "", device_root: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Builds the Runtime component, unpacks its zip as the nucleus does and runs the Install script of the
    manifest the nucleus picks for this machine (with platformOverride `accelerator` when given), the recipe
    variables interpolated (DefaultConfiguration merged with `overrides`). `device_root`: a fake device
    root for the GPU detection (appended as the installer's hidden --device-root)."""
    architecture = nucleus_architecture()
    if runtime_requirements_platform() is None:
        pytest.skip(f"no Runtime manifest to try on {architecture}")
    (tmp_path / "repo" / "recipes").mkdir(parents=True)
    recipe_path = ROOT / "recipes" / "com.edgeml.Runtime.yaml"
    shutil.copyfile(recipe_path, tmp_path / "repo" / "recipes" / recipe_path.name)
    project = tmp_path / "repo" / "components" / "com.edgeml.Runtime"
    shutil.copytree(RUNTIME_DIR, project, symlinks=True, ignore=shutil.ignore_patterns("greengrass-build"))
    [artifact] = build_project(project).artifacts

    root = tmp_path / "greengrass"
    paths = NucleusPaths(root)
    decompressed = paths.unarchive_path("com.edgeml.Runtime", "1.0.0")
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(decompressed / "com.edgeml.Runtime")
    work = paths.work_path("com.edgeml.Runtime")
    work.mkdir(parents=True, exist_ok=True)

    recipe = yaml.safe_load(recipe_path.read_text())
    device = {
        "os": "linux",
        "architecture": architecture,
        **({"accelerator": accelerator} if accelerator else {}),
    }
    manifest = select_manifest(recipe, device)
    install = manifest["Lifecycle"]["Install"]
    configuration = {**recipe["ComponentConfiguration"]["DefaultConfiguration"], **overrides}
    services = {"com.edgeml.Runtime": ResolvedService("1.0.0", configuration)}
    interpolated = Interpolator(paths, "core-1", services).interpolate(install, "com.edgeml.Runtime", set())
    env = {**os.environ, **interpolated["Setenv"]}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(
        ["sh", "-c", interpolated["Script"] + (f" --device-root {device_root}" if device_root else "")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, root


def test_recipe_install_step_runs_the_installer_from_the_built_artifact(tmp_path: Path) -> None:
    result, _ = _nucleus_install_step(tmp_path, {"WheelhouseDir": str(tmp_path / "no-wheels")})
    # Module found through Setenv PYTHONPATH, options parsed, requirements found inside the artifact.
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: WheelhouseDir {tmp_path / 'no-wheels'}: no such directory"


def test_default_venv_root_is_the_runtime_work_folder(tmp_path: Path) -> None:
    # A venv whose lock matches what the recipe asks for: the Install step leaves it alone, which shows
    # where the default VenvRoot (relative to the work folder) lands.
    machine_platform = detect_platform()
    requirements = requirements_file(RUNTIME_DIR / "requirements", machine_platform, "cpu").read_text()
    venv = tmp_path / "greengrass" / "work" / "com.edgeml.Runtime" / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    (venv / LOCK_FILE).write_text(
        json.dumps({"hash": lock_hash(requirements, machine_platform, "cpu", version)})
    )
    result, root = _nucleus_install_step(tmp_path, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("edgeml-runtime: unchanged ")
    reported = Path(result.stdout.split()[2])
    assert reported.resolve() == (root / "work" / "com.edgeml.Runtime" / "venv").resolve()


# Accelerator auto (issue 11 item 11): detection on a fake device root, the choice, the real install


def _device_root(tmp_path: Path, *signs: str) -> Path:
    root = tmp_path / "device-root"
    root.mkdir(parents=True, exist_ok=True)
    for sign in signs:
        (root / sign).parent.mkdir(parents=True, exist_ok=True)
        (root / sign).write_text("")
    return root


@pytest.mark.parametrize("sign", NVIDIA_GPU_SIGNS)
def test_auto_on_an_nvidia_manifest_picks_gpu_when_the_device_shows_a_gpu(tmp_path: Path, sign: str) -> None:
    root = _device_root(tmp_path, sign)
    assert nvidia_gpu_signs(root) == ["/" + sign]
    choice = choose_accelerator("auto", "nvidia", "linux-x86_64", RUNTIME_DIR / "requirements", root)
    assert (choice.accelerator, choice.warning) == ("gpu", None)
    assert "/" + sign in choice.reason


def test_auto_on_an_nvidia_manifest_without_a_gpu_falls_back_to_cpu_and_warns(tmp_path: Path) -> None:
    root = _device_root(tmp_path, "dev/null-not-a-gpu", "proc/driver/other")
    choice = choose_accelerator("auto", "nvidia", "linux-aarch64", RUNTIME_DIR / "requirements", root)
    assert choice.accelerator == "cpu"
    assert choice.warning is not None and "no NVIDIA GPU was found" in choice.warning
    assert all("/" + sign in choice.warning for sign in NVIDIA_GPU_SIGNS)


def test_auto_with_a_gpu_but_no_gpu_requirements_falls_back_to_cpu_and_warns(tmp_path: Path) -> None:
    root = _device_root(tmp_path, "dev/nvidia0")
    requirements = tmp_path / "reqs"
    requirements.mkdir()
    (requirements / "linux-x86_64.txt").write_text("tinypkg==1.0\n")
    choice = choose_accelerator("auto", "nvidia", "linux-x86_64", requirements, root)
    assert choice.accelerator == "cpu"
    assert choice.warning is not None and "linux-x86_64-gpu.txt" in choice.warning


def test_auto_on_a_cpu_manifest_stays_on_cpu_and_says_so_when_a_gpu_is_present(tmp_path: Path) -> None:
    bare = choose_accelerator(
        "auto", "", "linux-x86_64", RUNTIME_DIR / "requirements", _device_root(tmp_path)
    )
    assert (bare.accelerator, bare.warning) == ("cpu", None)
    root = _device_root(tmp_path, "dev/nvidia0")
    with_gpu = choose_accelerator("auto", "", "linux-x86_64", RUNTIME_DIR / "requirements", root)
    assert with_gpu.accelerator == "cpu"
    assert with_gpu.warning is not None and "platformOverride accelerator: nvidia" in with_gpu.warning


@pytest.mark.parametrize("configured", ["cpu", "gpu"])
def test_an_explicit_accelerator_is_taken_as_given(tmp_path: Path, configured: str) -> None:
    root = _device_root(tmp_path) if configured == "gpu" else _device_root(tmp_path, "dev/nvidia0")
    choice = choose_accelerator(configured, "nvidia", "linux-x86_64", RUNTIME_DIR / "requirements", root)
    assert (choice.accelerator, choice.warning) == (configured, None)


def test_an_unknown_accelerator_is_one_error_line(project: Path) -> None:
    result = _install(project, *_args(project, "--accelerator", "tpu"))
    assert result.returncode == 1
    assert result.stderr.strip() == "error: Accelerator 'tpu': expected one of auto, cpu, gpu"
    assert not (project / "work").exists()


@pytest.mark.slow
def test_auto_installs_the_gpu_requirements_only_where_the_device_shows_a_gpu(
    project: Path, tmp_path: Path
) -> None:
    """The real installer (venv + pip, offline): gpu file -> tinypkg 2.0, cpu file -> tinypkg 1.0."""
    gpu_root = _device_root(tmp_path / "gpu", "dev/nvidia0")
    on_gpu = _install(
        project, *_args(project, "--device-accelerator", "nvidia", "--device-root", str(gpu_root))
    )
    assert on_gpu.returncode == 0, on_gpu.stderr
    assert on_gpu.stderr == ""
    assert "linux-x86_64-gpu.txt" in on_gpu.stdout and "Accelerator auto: gpu" in on_gpu.stdout
    assert _venv_version(project / "work" / "venv", "tinypkg") == "2.0"

    no_gpu = _install(
        project,
        *_args(
            project, "--device-accelerator", "nvidia", "--device-root", str(_device_root(tmp_path / "cpu"))
        ),
    )
    assert no_gpu.returncode == 0, no_gpu.stderr
    [warning] = no_gpu.stderr.strip().splitlines()
    assert warning.startswith("warning: Accelerator auto: the nucleus picked an nvidia manifest")
    assert no_gpu.stdout.startswith("edgeml-runtime: replaced ")
    assert _venv_version(project / "work" / "venv", "tinypkg") == "1.0"


@pytest.mark.slow
def test_the_recipes_nvidia_manifest_installs_the_gpu_requirements_by_default(tmp_path: Path) -> None:
    """platformOverride accelerator: nvidia and the recipe's defaults: the nvidia manifest's Install step
    asks pip for the -gpu requirements where the device shows a GPU (an empty wheelhouse stops pip there)."""
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    gpu_root = _device_root(tmp_path / "gpu", "dev/nvidia0")
    result, _ = _nucleus_install_step(tmp_path / "a", {"WheelhouseDir": str(empty)}, "nvidia", gpu_root)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: pip install -r {detect_platform()}-gpu.txt failed")
    no_gpu = _device_root(tmp_path / "cpu")
    result, _ = _nucleus_install_step(tmp_path / "b", {"WheelhouseDir": str(empty)}, "nvidia", no_gpu)
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith("warning: Accelerator auto: the nucleus picked an nvidia manifest")
    assert error.startswith(f"error: pip install -r {detect_platform()}.txt failed")
