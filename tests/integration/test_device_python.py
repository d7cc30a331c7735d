"""The Runtime's Install step and the inference app under the Python versions real devices ship.

JetPack 6 and Ubuntu 22.04 ship Python 3.10; Debian 12 3.11; Ubuntu 24.04 3.12. For 3.10 and 3.12 (from
pyenv; skipped, saying so, where an interpreter is absent) the installer runs UNDER that interpreter,
builds the venv offline from a cached wheelhouse of the pinned linux-x86_64 requirements (pip --no-index),
and the app started from that venv classifies digits over its HTTP input against the IPC and Stream
Manager twins, with the same scores as the app in the host's venv (other numpy/Pillow/onnxruntime
releases on 3.10) within 2e-5.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from device_venv_harness import (
    INFERENCE,
    RUNTIME,
    App,
    DeviceTwins,
    app_configuration,
    post,
    scores,
    wheelhouse,
)

from edgeml.twin.loopback import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from inference_kit import holdout, png, write_model_dir

pytestmark = pytest.mark.slow
SAMPLES = (0, 1, 2, 3, 4)
TOLERANCE = 2e-5


def pyenv_python(version: str) -> Path:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        root = Path(found.stdout.strip() or root)
    candidates = sorted((root / "versions").glob(f"{version}.*/bin/python3"))
    if not candidates:
        pytest.skip(f"no Python {version} under {root / 'versions'} (pyenv install {version}): not tested")
    return candidates[-1]


def classify(python: Path, root: Path) -> list[dict[str, float]]:
    """Starts the app with `python` against fresh twins; the top-k scores of SAMPLES over HTTP."""
    model = write_model_dir(root / "model")
    port = free_port()
    twins = DeviceTwins(root, app_configuration(model, root / "work" / "input", port))
    (root / "work").mkdir()
    env = {**os.environ, **twins.app_env(), "PYTHONPATH": str(INFERENCE)}
    app = App([str(python), "-m", "edgeml_inference"], env, root / "work", root / "app.log", port)
    x, _ = holdout()
    try:
        app.wait_healthy()
        results = []
        for index in SAMPLES:
            status, body = post(port, png(x[index]))
            assert status == 200 and body["status"] == "ok", body
            results.append(scores(body))
        assert app.stop() == 0, (root / "app.log").read_text()[-2000:]
        return results
    finally:
        app.stop()
        twins.stop()


@pytest.fixture(scope="module")
def host_scores() -> Iterator[list[dict[str, float]]]:
    root = Path(f"/tmp/edgeml-py-host-{uuid.uuid4().hex[:8]}")  # short: the IPC socket path
    root.mkdir()
    try:
        yield classify(Path(sys.executable), root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("version", ["3.10", "3.12"])
def test_install_and_classify_under_device_python(version: str, host_scores: list[dict[str, float]]) -> None:
    python = pyenv_python(version)
    requirements = RUNTIME / "requirements" / "linux-x86_64.txt"
    wheels = wheelhouse(requirements, f"linux-x86_64-py{version}", [str(python), "-m", "pip"])
    root = Path(f"/tmp/edgeml-py{version}-{uuid.uuid4().hex[:8]}")
    root.mkdir()
    try:
        env = {**os.environ, "PYTHONPATH": str(RUNTIME), "PIP_NO_CACHE_DIR": "1"}
        install = [str(python), "-m", "edgeml_runtime", "--platform", "linux-x86_64", "--python", str(python)]
        install += ["--venv-root", str(root / "venv"), "--wheelhouse", str(wheels), "--timeout", "900"]
        built = subprocess.run(install, env=env, capture_output=True, text=True, timeout=1000, check=False)
        assert built.returncode == 0, built.stderr
        assert built.stdout.startswith(f"edgeml-runtime: created {root / 'venv'} (linux-x86_64.txt")
        venv_python = root / "venv" / "bin" / "python"
        reported = subprocess.run(
            [str(venv_python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert reported.stdout.strip() == version
        again = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert again.returncode == 0 and " unchanged " in again.stdout, again.stderr
        # Every device module parses on this Python, also those the run does not import (dlr, LiteRT).
        packages = [str(INFERENCE / "edgeml_inference"), str(RUNTIME / "edgeml_runtime")]
        compiled = subprocess.run(
            [str(venv_python), "-m", "compileall", "-q", "-f", *packages],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONPYCACHEPREFIX": str(root / "pycache")},
        )
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr

        device = classify(venv_python, root / "device")
        for got, expected in zip(device, host_scores, strict=True):
            assert got.keys() == expected.keys()
            assert all(abs(got[label] - expected[label]) <= TOLERANCE for label in got), (got, expected)
    finally:
        shutil.rmtree(root, ignore_errors=True)
