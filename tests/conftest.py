"""Shared fixtures. Every AWS call in the tests goes to a loopback moto server, never to AWS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeml.twin.cloud.motoserver import TWIN_CREDENTIALS, MotoServer, pointed_at

REPO_ROOT = Path(__file__).resolve().parent.parent

# Anything not explicitly pointed at a twin fails fast on a closed loopback port instead of reaching AWS.
os.environ.update(TWIN_CREDENTIALS)
os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One loopback moto server for the session (state is shared: use unique resource names)."""
    with MotoServer() as server:
        yield server


@pytest.fixture()
def aws(moto_server: MotoServer) -> Iterator[MotoServer]:
    """Points boto3 (AWS_ENDPOINT_URL) at the session's moto server for one test."""
    with pointed_at(moto_server.env()):
        yield moto_server


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
