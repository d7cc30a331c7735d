"""Rules the device side and the cloud side each keep once (device code never imports edgeml): the two
copies agree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from edgeml_inference import metadata as device_metadata
from edgeml_runtime import installer

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
