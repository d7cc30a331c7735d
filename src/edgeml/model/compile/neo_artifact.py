"""Validation and extraction of a Neo output tarball (the DLR layout)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from edgeml.errors import EdgemlError

DLR_FILES: tuple[str, ...] = (
    "compiled.so",
    "compiled.params",
    "compiled_model.json",
    "compiled.meta",
    "libdlr.so",
)


class NeoArtifactInvalid(EdgemlError):
    """The Neo output is not a tar.gz, has unsafe paths, or lacks files of the DLR layout."""


def _root_name(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    return name


def extract_dlr_tarball(data: bytes, destination: Path, origin: str) -> list[str]:
    """Checks `data` holds every DLR file at its root, then extracts it into `destination`.

    Returns the extracted file names. `origin` (the S3 URI) is named in errors.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            return _validate_and_extract(archive, destination, origin)
    except (tarfile.ReadError, tarfile.CompressionError, EOFError) as error:
        raise NeoArtifactInvalid(f"{origin}: not a tar archive ({error})") from error


def _validate_and_extract(archive: tarfile.TarFile, destination: Path, origin: str) -> list[str]:
    present = {_root_name(member) for member in archive.getmembers() if member.isfile()}
    missing = [name for name in DLR_FILES if name not in present]
    if missing:
        raise NeoArtifactInvalid(f"{origin}: Neo output lacks {', '.join(missing)} (DLR layout)")
    destination.mkdir(parents=True, exist_ok=True)
    try:
        archive.extractall(destination, filter="data")
    except tarfile.FilterError as error:
        raise NeoArtifactInvalid(f"{origin}: unsafe member in Neo output ({error})") from error
    return sorted(present)
