"""Rules the device side and the cloud side each keep once (device code never imports edgeml): the two
copies agree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from edgeml_inference import metadata as device_metadata
from edgeml_inference.backends.onnxruntime import NVIDIA_DEVICE_NODES
from edgeml_runtime import installer
from edgeml_runtime.accelerator import NVIDIA_GPU_SIGNS

from edgeml import machine
from edgeml.model import metadata as cloud_metadata
from edgeml.model.variants import sha256_file as cloud_sha256_file


def test_the_device_reads_the_metadata_schema_the_cloud_writes() -> None:
    assert device_metadata.METADATA_SCHEMA == cloud_metadata.METADATA_SCHEMA


def test_both_sides_hash_a_file_alike(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(3 * (1 << 20) + 17))  # several read chunks and a partial one
    assert device_metadata.sha256_file(path) == cloud_sha256_file(path)


@pytest.mark.parametrize("uname", ["x86_64", "amd64", "aarch64", "arm64", "AMD64"])
def test_the_runtime_requirements_platform_is_the_installers(uname: str) -> None:
    assert machine.runtime_requirements_platform(uname) == installer.detect_platform("linux", uname)


@pytest.mark.parametrize("uname", ["armv7l", "armv6l"])
def test_neither_side_has_runtime_requirements_for_32_bit_arm(uname: str) -> None:
    assert machine.nucleus_architecture(uname) == "arm"
    assert machine.runtime_requirements_platform(uname) is None
    with pytest.raises(installer.UnsupportedPlatform):
        installer.detect_platform("linux", uname)


def test_every_requirements_platform_of_the_installer_is_known_to_the_cloud_side() -> None:
    assert set(machine.RUNTIME_REQUIREMENTS_PLATFORMS.values()) == set(installer.SUPPORTED_PLATFORMS)


def test_the_runtime_installs_the_gpu_build_wherever_the_app_sees_a_gpu() -> None:
    # Two device components (the app does not import the Runtime's installer): ExecutionProviders auto
    # warns "GPU present but unusable" on these nodes, so Accelerator auto must take them as a GPU.
    assert {node.removeprefix("/") for node in NVIDIA_DEVICE_NODES} <= set(NVIDIA_GPU_SIGNS)
