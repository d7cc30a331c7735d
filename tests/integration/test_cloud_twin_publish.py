"""Publishing to the twin as a user does: `edgeml publish` and the real `gdk component publish`, run
unchanged with AWS_ENDPOINT_URL pointing at the twin; NEXT_PATCH continues from the twin's versions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cloud_twin_harness import client, endpoint_with

from edgeml.twin.loopback import wait_for

BIN = Path(sys.executable).parent
COMPONENTS = ("com.edgeml.Runtime", "com.edgeml.Inference")


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.mark.slow
@pytest.mark.skipif(not (BIN / "gdk").exists(), reason="real gdk is not installed in this venv")
def test_edgeml_publish_and_real_gdk_publish_reach_the_twin(tmp_path, repo_root):
    components = tmp_path / "components"
    for name in COMPONENTS:  # a copy: building writes greengrass-build/ next to the sources
        shutil.copytree(repo_root / "components" / name, components / name, symlinks=False)
    with endpoint_with(tmp_path / "twin") as endpoint:
        env = {**os.environ, **endpoint.env()}
        _run(
            [str(BIN / "edgeml"), "publish", "--components-dir", str(components), *COMPONENTS], tmp_path, env
        )
        _run([str(BIN / "gdk"), "component", "build"], components / "com.edgeml.Runtime", env)
        _run([str(BIN / "gdk"), "component", "publish"], components / "com.edgeml.Runtime", env)

        greengrass = client(endpoint, "greengrassv2")
        mine = {
            item["componentName"]: item for item in greengrass.list_components(scope="PRIVATE")["components"]
        }
        assert set(COMPONENTS) <= set(mine)
        runtime_arn = mine["com.edgeml.Runtime"]["arn"]
        versions = [
            v["componentVersion"]
            for v in greengrass.list_component_versions(arn=runtime_arn)["componentVersions"]
        ]
        assert sorted(versions) == ["1.0.0", "1.0.1"]  # edgeml's 1.0.0, then gdk's NEXT_PATCH from the twin
        for version in versions:
            arn = f"{runtime_arn}:versions:{version}"
            described = wait_for(
                lambda arn=arn: (
                    (d := greengrass.describe_component(arn=arn))["status"]["componentState"]
                    in ("DEPLOYABLE", "FAILED")
                    and d
                ),
                f"{arn} to leave REQUESTED",
                timeout_s=10,
            )
            assert described["status"]["componentState"] == "DEPLOYABLE", described["status"]
