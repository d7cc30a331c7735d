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
from edgeml_runtime.installer import (
    LOCK_FILE,
    MissingRequirements,
    UnsupportedPlatform,
    detect_platform,
    lock_hash,
    requirements_file,
)

from edgeml.components.build import build_project

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
    assert _venv_version(venv, "tinypkg") == "1.0"
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
        "error: unsupported platform linux-mips: supported are linux-aarch64, linux-armv7l, linux-x86_64"
    ]
    assert not (project / "v").exists()


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("Linux", "x86_64", "linux-x86_64"),
        ("Linux", "aarch64", "linux-aarch64"),
        ("Linux", "armv7l", "linux-armv7l"),
    ],
)
def test_detects_the_three_platforms(system: str, machine: str, expected: str) -> None:
    assert detect_platform(system, machine) == expected


@pytest.mark.parametrize(
    ("system", "machine"), [("Linux", "mips64"), ("Windows", "AMD64"), ("Darwin", "arm64")]
)
def test_rejects_other_platforms(system: str, machine: str) -> None:
    with pytest.raises(UnsupportedPlatform, match=f"{system.lower()}/{machine.lower()}"):
        detect_platform(system, machine)


def test_every_platform_has_pinned_requirements_for_cpu() -> None:
    for name in ("linux-x86_64", "linux-aarch64", "linux-armv7l"):
        path = requirements_file(RUNTIME_DIR / "requirements", name, "cpu")
        pins = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
        assert pins and all("==" in line for line in pins), path
    assert (
        "onnxruntime-gpu=="
        in requirements_file(RUNTIME_DIR / "requirements", "linux-x86_64", "gpu").read_text()
    )
    assert "dlr==" in requirements_file(RUNTIME_DIR / "requirements", "linux-aarch64", "cpu").read_text()


def test_missing_gpu_requirements_names_what_exists() -> None:
    with pytest.raises(MissingRequirements, match=r"linux-armv7l-gpu.txt.*available: .*linux-x86_64.txt"):
        requirements_file(RUNTIME_DIR / "requirements", "linux-armv7l", "gpu")


def _nucleus_install_step(
    tmp_path: Path, overrides: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Builds the Runtime component, unpacks its zip as the nucleus does and runs this platform's Install
    script with the recipe variables interpolated (DefaultConfiguration merged with `overrides`)."""
    machine = platform.machine().lower()
    architecture = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
        machine
    )
    if architecture is None:
        pytest.skip(f"no Runtime manifest to try on {machine}")
    (tmp_path / "repo" / "recipes").mkdir(parents=True)
    recipe_path = ROOT / "recipes" / "com.edgeml.Runtime.yaml"
    shutil.copyfile(recipe_path, tmp_path / "repo" / "recipes" / recipe_path.name)
    project = tmp_path / "repo" / "components" / "com.edgeml.Runtime"
    shutil.copytree(RUNTIME_DIR, project, symlinks=True, ignore=shutil.ignore_patterns("greengrass-build"))
    [artifact] = build_project(project).artifacts

    root = tmp_path / "greengrass"
    decompressed = root / "packages" / "artifacts-unarchived" / "com.edgeml.Runtime" / "1.0.0"
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(decompressed / "com.edgeml.Runtime")
    work = root / "work" / "com.edgeml.Runtime"
    work.mkdir(parents=True, exist_ok=True)

    recipe = yaml.safe_load(recipe_path.read_text())
    [manifest] = [m for m in recipe["Manifests"] if m["Platform"]["architecture"] == architecture]
    install = manifest["Lifecycle"]["Install"]
    configuration = {**recipe["ComponentConfiguration"]["DefaultConfiguration"], **overrides}
    variables = {"{artifacts:decompressedPath}": str(decompressed)}
    variables |= {f"{{configuration:/{key}}}": str(value) for key, value in configuration.items()}

    def interpolate(text: str) -> str:
        for variable, value in variables.items():
            text = text.replace(variable, value)
        return text

    env = {**os.environ, **{k: interpolate(v) for k, v in install["Setenv"].items()}}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    result = subprocess.run(
        ["sh", "-c", interpolate(install["Script"])],
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
